"""What a job may ask for, and the queue that carries job ids to the workers; shared by the command
line, the API and the workers. Imports no torch: a job names its pool, and the worker resolves it.

- `TrainConfig`: the training settings a job may set, each with its bounds (422 at the API, a
  `pydantic.ValidationError` naming the field in the library and on the command line).
- `check_training`: method name, method config and pool refused before anything is queued;
  `check_trainable`: profiles without enough rows or labels refused, all named.
- `Promotion`: whether a job's new artifact replaces the profile's current one (always, or only when
  not worse on the holdout); every artifact is kept as a version either way.
- `create_training_jobs`, `create_pool_job`: jobs rows in the database; `enqueue` sends their ids
  through Celery.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from profilekit.data.profiles import MIN_ROWS, untrainable_reason
from profilekit.errors import ConfigError, UntrainableProfiles
from profilekit.settings import Settings
from profilekit.store import repo
from profilekit.store.models import JOB_KINDS, JOB_STATES, Pool

__all__ = ["JOB_KINDS", "JOB_STATES", "FINAL_STATES", "RUN_JOB", "TRAINING_QUEUE", "Promotion", "TrainConfig",
           "check_training", "check_trainable", "create_pool_job", "create_training_jobs", "default_pool",
           "untrainable", "enqueue", "make_celery", "method_name", "waiting_messages"]

RUN_JOB = "profilekit.run_job"
TRAINING_QUEUE = "training"
FINAL_STATES = ("succeeded", "failed", "cancelled")
METHOD_ALIASES = {"xpeft-hard": "xpeft_hard", "xpeft-soft": "xpeft_soft", "head-only": "head_only",
                  "single-adapter": "single_adapter"}
RANDOM_POOL = re.compile(r"random-(\d{1,5})")  # pool reference: the random pool of N adapters (seed 0)
POOL_HASH = re.compile(r"[0-9a-f]{64}")  # pool reference: a registered pool


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class TrainConfig:
    """How a job trains its profiles (training/loop.py). Every field is bounded."""

    epochs: int = Field(10, ge=1, le=500, description="Passes over each profile's training rows.")
    batch_size: int = Field(16, ge=1, le=1024, description="Rows of one profile per step.")
    profiles_per_step: int = Field(16, ge=1, le=256, description="Profiles packed into one mixed forward.")
    patience: int = Field(3, ge=1, le=100, description="Epochs without a better holdout loss before a profile "
                                                       "stops.")
    holdout_fraction: float = Field(0.3, ge=0.05, le=0.5, description="Share of each label's rows held out.")
    min_rows: int = Field(MIN_ROWS, ge=3, le=100_000, description="Rows a profile needs to be trained; jobs "
                          "refuse profiles with fewer (the same default as uploads and onboarding).")
    warmup_ratio: float = Field(0.0, ge=0.0, le=0.5, description="Share of a profile's steps spent warming up.")
    eval_batch_size: int = Field(128, ge=1, le=4096, description="Rows per forward when scoring the holdout.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seeds splits, initialisation, shuffling and noise.")


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Promotion:
    """Whether a training job's new artifact becomes its profile's current one. Every artifact is kept
    either way (`GET /v1/profiles/{id}/artifacts`), so an earlier one can be promoted back."""

    policy: Literal["always", "if_not_worse"] = Field(
        "always", description="always: the new artifact becomes current; if_not_worse: the current one is kept "
        "when the new holdout accuracy is lower by more than `tolerance`.")
    tolerance: float = Field(0.0, ge=0.0, le=1.0, description="if_not_worse: how much lower (in holdout "
                             "accuracy, 0-1) the new artifact may score and still become current.")

    def decide(self, current: dict, new: dict) -> tuple[bool, str]:
        """(promote, why) from the current and the new artifact's holdout metrics."""
        if self.policy == "always":
            return True, "promotion policy always"
        old, fresh = current.get("accuracy"), new.get("accuracy")
        if old is None or fresh is None:
            return True, "no holdout accuracy to compare"
        if fresh < old - self.tolerance:
            return False, (f"kept the current artifact: new holdout accuracy {fresh:.3f} is below its {old:.3f} "
                           f"by more than the tolerance {self.tolerance:g}")
        return True, f"new holdout accuracy {fresh:.3f} is not worse than {old:.3f} (tolerance {self.tolerance:g})"


def method_name(name: str) -> str:
    """A registered method's name; the command line's dashed spellings (xpeft-hard) are accepted too.
    Raises UnknownMethodError."""
    from profilekit.methods.registry import get_method

    return get_method(METHOD_ALIASES.get(name, name.replace("-", "_"))).name


def default_pool(settings: Settings, session=None, tenant: str | None = None) -> str:
    """The pool reference of a tenant's new profiles: its default pool when it has one (a warm pool,
    `profilekit pools set-default`), else the configured random pool (the worker regenerates it)."""
    chosen = repo.tenant_pool(session, tenant=tenant) if session is not None and tenant is not None else None
    return chosen or f"random-{settings.default_pool_size}"


def check_training(method: str, method_config: dict | None = None, pool: str | None = None,
                   registered: tuple[int, bool] | None = None) -> str:
    """Refuse an unknown method, a bad method config or a pool a pool method cannot use (its reference, or
    a config that does not fit it: k above its N, a shared head it lacks); returns the method's registered
    name. `registered`: (N, has a shared head) of the pool hash `pool` names, from the store.
    Raises UnknownMethodError or ConfigError."""
    from profilekit.methods.registry import get_method

    spec = get_method(method_name(method))
    try:
        config = spec.make_config(**(method_config or {}))
    except TypeError as exc:  # an unknown field
        raise ConfigError(f"{spec.name}: {exc}") from exc
    if spec.uses_pool:
        if pool is None or not (RANDOM_POOL.fullmatch(pool) or POOL_HASH.fullmatch(pool)):
            raise ConfigError(f"{spec.name} needs a pool: a pool hash or random-N, got {pool!r}")
        match = RANDOM_POOL.fullmatch(pool)
        fits = (int(match[1]), False) if match else registered  # a random pool has no shared head
        if fits is not None and hasattr(config, "resolved"):
            try:
                config.resolved(pool_has_head=fits[1], num_adapters=fits[0])
            except ConfigError as exc:
                raise ConfigError(f"{spec.name}: {exc}") from exc
    return spec.name


def untrainable(session, profile_ids: list[str], train: TrainConfig) -> list[dict]:
    """The profiles a job could not train (too few examples, one label): {"id", "rows", "labels", "reason"}."""
    counts = repo.example_counts(session, profile_ids=profile_ids)
    refused = []
    for profile_id in profile_ids:
        rows, labels = counts.get(profile_id, (0, 0))
        reason = untrainable_reason(rows, labels, min_rows=train.min_rows)
        if reason:
            refused.append({"id": profile_id, "rows": rows, "labels": labels, "reason": reason})
    return refused


def check_trainable(session, profile_ids: list[str], train: TrainConfig) -> None:
    """Refuse, before anything is queued, what a job could not train; raises UntrainableProfiles naming
    every such profile."""
    refused = untrainable(session, profile_ids, train)
    if refused:
        names = ", ".join(r["id"] for r in refused[:10]) + (" …" if len(refused) > 10 else "")
        raise UntrainableProfiles(f"{len(refused)} profile(s) cannot be trained: {names}; first: "
                                  f"{refused[0]['reason']}", refused)


def create_training_jobs(session, *, profile_ids: list[str], method: str, pool: str | None,
                         train: TrainConfig | dict | None = None, method_config: dict | None = None,
                         tenant: str = "default", per_job: int = 16, max_attempts: int = 3,
                         idempotency_key: str | None = None, promotion: Promotion | dict | None = None) -> list:
    """Training jobs for these profiles (not yet sent to the broker): `per_job` profiles share one job's
    batches. The method, its config, the training settings, the promotion policy and the profiles'
    examples are checked first (a bad setting raises pydantic's ValidationError naming the field)."""
    row = session.get(Pool, pool) if pool is not None and POOL_HASH.fullmatch(pool) else None
    method = check_training(method, method_config, pool,
                            registered=(row.num_adapters, row.head_labels is not None) if row is not None else None)
    train = train if isinstance(train, TrainConfig) else TrainConfig(**(train or {}))
    promotion = promotion if isinstance(promotion, Promotion) else Promotion(**(promotion or {}))
    check_trainable(session, profile_ids, train)
    from dataclasses import asdict

    params = {"method": method, "pool": pool if method_uses_pool(method) else None, "train": asdict(train),
              "method_config": method_config or {}, "promotion": asdict(promotion)}
    jobs = []
    for start in range(0, len(profile_ids), per_job):
        job, _ = repo.create_job(session, kind="train", profile_ids=profile_ids[start:start + per_job],
                                 params=params, tenant=tenant, max_attempts=max_attempts,
                                 idempotency_key=idempotency_key)
        jobs.append(job)
    return jobs


def create_pool_job(session, *, profile_ids: list[str], tenant: str, name: str | None = None,
                    set_default: bool = False, train: TrainConfig | dict | None = None, reduction_factor: int = 16,
                    idempotency_key: str | None = None):
    """A job that builds a warm pool from these profiles (one adapter each, a shared head over their
    labels), registers it for the tenant, and with `set_default` makes it the tenant's default pool."""
    if len(set(profile_ids)) < 2:
        raise ConfigError(f"a warm pool is built from at least two profiles, got {len(set(profile_ids))}")
    if not 1 <= reduction_factor <= 384:
        raise ConfigError(f"reduction_factor must be in [1, 384], got {reduction_factor}")
    train = train if isinstance(train, TrainConfig) else TrainConfig(**(train or {}))
    from dataclasses import asdict

    job, _ = repo.create_job(session, kind="build_pool", profile_ids=list(dict.fromkeys(profile_ids)), tenant=tenant,
                             params={"name": name, "set_default": set_default, "train": asdict(train),
                                     "reduction_factor": reduction_factor}, idempotency_key=idempotency_key)
    return job


def method_uses_pool(method: str) -> bool:
    from profilekit.methods.registry import get_method

    return get_method(method).uses_pool


def make_celery(settings: Settings):
    """The Celery app, used to send job ids (API, command line) and to run them (workers). Broker: the
    embedded default needs no server (kombu's SQLAlchemy transport on SQLite); at scale, Redis."""
    from celery import Celery
    from kombu import Queue

    app = Celery("profilekit", broker=settings.resolved_broker_url)
    app.conf.update(
        task_queues=[Queue(TRAINING_QUEUE)],
        task_default_queue=TRAINING_QUEUE,
        task_acks_late=True,  # a job is acknowledged when it ends, so a killed worker's job comes back
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # one training job at a time per worker process
        task_ignore_result=True,  # results and progress are written to the database
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    if settings.resolved_broker_url.startswith("redis"):
        # unacknowledged jobs return after this long: longer than the longest job
        app.conf.broker_transport_options = {"visibility_timeout": settings.visibility_timeout}
    app.conf.profilekit_settings = settings
    return app


def enqueue(celery_app, job_id: str) -> None:
    celery_app.send_task(RUN_JOB, args=[job_id], queue=TRAINING_QUEUE)


def waiting_messages(celery_app) -> int:
    """Job ids waiting in the broker's training queue (not those a worker holds). Declares the queue and
    its binding first, so a broker that lost them (Redis flushed, restarted empty) routes sends again."""
    queue = celery_app.amqp.queues[TRAINING_QUEUE]
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        queue.bind(channel).declare()
        return channel.queue_declare(queue=TRAINING_QUEUE).message_count
