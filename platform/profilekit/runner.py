"""What a worker does with a job id: claim it, train, store the artifacts atomically, report progress.

The worker's body (workers/tasks.py calls `run_job`). The backbone is loaded once per process and kept
(`serving.EngineCache`); a job names its pool (a registered hash, or `random-N`) and is resolved here.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import asdict

from profilekit.data import ProfileData
from profilekit.errors import AttemptLost, NotFound, ProfilekitError
from profilekit.jobs import POOL_HASH, RANDOM_POOL, Promotion, TrainConfig
from profilekit.serving import EngineCache
from profilekit.store import repo
from profilekit.store.models import Pool

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    pass


class JobHandedBack(Exception):
    """The worker is stopping (SIGTERM, Ctrl-C, its parent gone): the job goes back to the queue unfinished."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(job_id: str, *, sessions, cache: EngineCache, stopping: threading.Event | None = None) -> str:
    """Run one job to its end state; returns that state. Safe to call twice for the same id.
    "lost" when the attempt was taken over (the job's heartbeat and this worker's went stale, another
    worker re-queued it, and this attempt's results are dropped). When `stopping` is set mid-job, the job
    is handed back (queued again, this attempt not counted) at the next training step rather than left
    running; returns "queued" then."""
    with sessions() as session:
        job = repo.claim_job(session, job_id=job_id, worker=worker_name())
        if job is None:
            current = session.get(repo.Job, job_id)
            log.info("job %s not claimable (state %s)", job_id, getattr(current, "state", "missing"))
            return getattr(current, "state", "missing")
        attempt = job.attempts
        if attempt > job.max_attempts:
            repo.finish_job(session, job_id=job_id, state="failed", attempt=attempt,
                            error=f"gave up after {job.max_attempts} attempts")
            return "failed"
        kind, params, profile_ids = job.kind, dict(job.params), list(job.profile_ids)
    reporter = _Reporter(job_id, attempt, sessions, stopping=stopping)
    try:
        if kind == "train":
            _train(job_id, profile_ids, params, sessions=sessions, cache=cache, reporter=reporter)
        elif kind == "build_pool":
            _build_pool(job_id, profile_ids, params, sessions=sessions, cache=cache, reporter=reporter)
        else:
            raise ProfilekitError(f"unknown job kind {kind!r}")
    except JobHandedBack:
        with sessions() as session:
            repo.hand_back_job(session, job_id=job_id, attempt=attempt,
                               reason=f"its worker {worker_name()} is stopping")
        return "queued"
    except AttemptLost:
        log.warning("job %s: attempt %d was taken over by another worker; its results are dropped", job_id, attempt)
        return "lost"
    except JobCancelled:
        return _finish(sessions, job_id, attempt, "cancelled")
    except (ProfilekitError, ValueError) as exc:  # bad data, unknown pool, bad hyperparameters
        return _finish(sessions, job_id, attempt, "failed", str(exc))
    except Exception as exc:  # a bug or the machine: record it rather than leave the job running
        log.exception("job %s crashed", job_id)
        return _finish(sessions, job_id, attempt, "failed", f"internal error: {exc!r}")
    return "succeeded"


def _finish(sessions, job_id: str, attempt: int, state: str, error: str | None = None) -> str:
    """End the job, unless this attempt no longer owns it (then it is "lost": another attempt goes on)."""
    with sessions() as session:
        return state if repo.finish_job(session, job_id=job_id, state=state, error=error, attempt=attempt) else "lost"


def resolve_pool(session, ref: str | None, cache: EngineCache) -> Pool | None:
    """A job's pool reference → its stored row: a registered hash, or `random-N` (the random pool of N
    adapters on this worker's backbone, registered on first use)."""
    if ref is None:
        return None
    if POOL_HASH.fullmatch(ref):
        return repo.get_pool(session, pool_hash=ref)
    match = RANDOM_POOL.fullmatch(ref)
    if match is None:
        raise ProfilekitError(f"unknown pool reference {ref!r}")
    row = repo.ensure_pool(session, pool=cache.random_pool(int(match[1])))
    session.commit()
    return row


class _Reporter:
    """Progress callback: writes progress and a heartbeat at most every `every` seconds, checks cancel, and
    hands the job back at once (every step) when the worker is stopping. It writes as its attempt only
    (raising AttemptLost once the job was re-queued without it)."""

    def __init__(self, job_id: str, attempt: int, sessions, every: float = 1.0,
                 stopping: threading.Event | None = None):
        self.job_id, self.attempt, self.sessions, self.every, self.last = job_id, attempt, sessions, every, 0.0
        self.stopping = stopping
        self.losses: list[float] = []

    def __call__(self, progress) -> None:
        if self.stopping is not None and self.stopping.is_set():
            raise JobHandedBack()
        self.losses.append(progress.loss)
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        data = {"epoch": progress.epoch, "step": progress.step, "total_steps": progress.total_steps,
                "loss": progress.loss, "losses": self.losses[-200:]}
        with self.sessions() as session:
            repo.add_event(session, job_id=self.job_id, kind="progress",
                           message=f"epoch {progress.epoch} step {progress.step}/{progress.total_steps} "
                                   f"loss {progress.loss:.4f}", data={k: v for k, v in data.items() if k != "losses"})
            if repo.heartbeat(session, job_id=self.job_id, progress=data, attempt=self.attempt):
                raise JobCancelled()

    def beat(self) -> None:
        """A heartbeat without progress: after loading, before the first step, so a slow start is not
        taken for a dead worker."""
        with self.sessions() as session:
            if repo.heartbeat(session, job_id=self.job_id, progress={}, attempt=self.attempt):
                raise JobCancelled()


def _profiles(session, profile_ids: list[str], *, labels: bool = True
              ) -> tuple[list[ProfileData], list[list[int]], list[dict]]:
    """The profiles' training data and example ids, and those skipped because they were deleted since the
    job was queued ({"id", "reason"})."""
    data, example_ids, skipped = [], [], []
    for profile_id in profile_ids:
        try:
            profile = repo.get_profile(session, profile_id=profile_id)
        except NotFound:
            skipped.append({"id": profile_id, "reason": "deleted before the job started"})
            continue
        examples = repo.examples_of(session, profile_id=profile_id)
        if not examples:
            raise ProfilekitError(f"profile {profile_id} has no examples")
        label_set = tuple(profile.labels) if labels and profile.labels else None
        data.append(ProfileData(profile_id, [e.text for e in examples], [e.label for e in examples], label_set))
        example_ids.append([e.id for e in examples])
    if not data:
        raise ProfilekitError("every profile of the job was deleted: " + ", ".join(s["id"] for s in skipped))
    return data, example_ids, skipped


def _train(job_id: str, profile_ids: list[str], params: dict, *, sessions, cache: EngineCache,
           reporter: _Reporter) -> None:
    from profilekit.training import train_profiles

    with sessions() as session:
        pool_row = resolve_pool(session, params.get("pool"), cache)
        data, example_ids, skipped = _profiles(session, profile_ids)
    engine = cache.training_engine(pool_row)
    reporter.beat()
    config = TrainConfig(**params.get("train", {}))
    results = train_profiles(engine, data, params["method"], config=config, callback=reporter,
                             **params.get("method_config", {}))
    records = []
    for result, ids in zip(results, example_ids, strict=True):
        artifact = engine.save(result.state)
        splits = {ids[i]: "train" for i in result.split.train} | {ids[i]: "holdout" for i in result.split.holdout}
        records.append({
            "profile_id": result.key, "method": artifact.method,
            "pool_hash": pool_row.pool_hash if pool_row is not None else None,
            "payload": artifact.to_bytes(), "payload_bytes": artifact.payload_bytes,
            "stored_bytes": artifact.stored_bytes,
            "hyperparameters": {"method": result.state.config.to_dict(), "train": asdict(config)},
            "metrics": {"accuracy": result.accuracy, "macro_f1": result.macro_f1, "holdout_loss": result.holdout_loss,
                        "n_train": result.n_train, "n_holdout": result.n_holdout, "epochs_run": result.epochs_run,
                        "best_epoch": result.best_epoch, "train_seconds": result.train_seconds,
                        "trainable_params": result.trainable_params},
            "splits": splits,
        })
    promotion = Promotion(**params.get("promotion", {}))
    with sessions() as session:
        repo.write_results(session, job_id=job_id, attempt=reporter.attempt, records=records,
                           decide=promotion.decide, skipped=skipped)


def _build_pool(job_id: str, profile_ids: list[str], params: dict, *, sessions, cache: EngineCache,
                reporter: _Reporter) -> None:
    from profilekit.training import build_warm_pool

    with sessions() as session:
        data, _, _ = _profiles(session, profile_ids, labels=False)
        tenant = repo.get_job(session, job_id=job_id).tenant
    engine = cache.training_engine(None)
    config = TrainConfig(**params.get("train", {}))
    pool = build_warm_pool(engine, data, config=config, reduction_factor=params.get("reduction_factor", 16),
                           callback=reporter)
    stored = cache.store_pool(pool)  # the database or S3: every worker and replica reads it from there
    with sessions() as session:
        repo.ensure_pool(session, pool=pool, uri=stored.uri, blob_sha256=stored.sha256, built_from=profile_ids,
                         name=params.get("name"), tenant=tenant)
        if params.get("set_default"):
            repo.set_tenant_pool(session, tenant=tenant, pool_hash=pool.pool_hash)
        job = repo.get_job(session, job_id=job_id)
        job.progress = {**(job.progress or {}), "pool_hash": pool.pool_hash}
        session.commit()
        repo.finish_job(session, job_id=job_id, state="succeeded", attempt=reporter.attempt)
