"""What a worker does with a job id: claim it, train, store the artifacts atomically, report progress.

The backbone is loaded once per process and kept (`EngineCache`); pools are built or loaded by hash.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import asdict
from pathlib import Path

from profilekit.errors import ProfilekitError
from profilekit.settings import Settings
from profilekit.store import repo
from profilekit.store.models import Pool

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    pass


class EngineCache:
    """One backbone and Engine per process; pools regenerated or loaded once each."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = None
        self.pools: dict[str, object] = {}

    def backbone_id(self) -> str:
        return self._engine().backbone.backbone_id

    def _engine(self):
        if self.engine is None:
            from profilekit.backbone import load_backbone
            from profilekit.engine import Engine

            s = self.settings
            backbone = load_backbone(s.backbone_path, device=s.device, dtype=s.dtype, max_length=s.max_length)
            self.engine = Engine(backbone)
        return self.engine

    def pool(self, row: Pool):
        if row.pool_hash not in self.pools:
            from profilekit.pool import PoolSpec, load_pool, random_pool

            if row.uri:
                pool = load_pool(row.uri)
            else:
                pool = random_pool(PoolSpec(**row.spec))
            if pool.pool_hash != row.pool_hash:
                raise ProfilekitError(f"pool {row.pool_hash[:12]}… regenerated with hash {pool.pool_hash[:12]}…")
            self.pools[row.pool_hash] = pool
        return self.pools[row.pool_hash]

    def engine_for(self, row: Pool | None):
        """The engine, serving the pool of `row` too and taking it as the default for new profiles."""
        engine = self._engine()
        engine.use_pool(self.pool(row) if row is not None else None)
        return engine

    def serving_engine(self, rows: list[Pool]):
        """The engine with these pools added (serving never changes the default pool)."""
        engine = self._engine()
        for row in rows:
            engine.add_pool(self.pool(row))
        return engine


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(job_id: str, *, sessions, cache: EngineCache) -> str:
    """Run one job to its end state; returns that state. Safe to call twice for the same id."""
    with sessions() as session:
        job = repo.claim_job(session, job_id=job_id, worker=worker_name())
        if job is None:
            current = session.get(repo.Job, job_id)
            log.info("job %s not claimable (state %s)", job_id, getattr(current, "state", "missing"))
            return getattr(current, "state", "missing")
        if job.attempts > job.max_attempts:
            repo.finish_job(session, job_id=job_id, state="failed",
                            error=f"gave up after {job.max_attempts} attempts")
            return "failed"
        kind, params, profile_ids = job.kind, dict(job.params), list(job.profile_ids)
    try:
        if kind in ("train", "train_many"):
            _train(job_id, profile_ids, params, sessions=sessions, cache=cache)
        elif kind == "build_pool":
            _build_pool(job_id, profile_ids, params, sessions=sessions, cache=cache)
        else:
            raise ProfilekitError(f"unknown job kind {kind!r}")
    except JobCancelled:
        with sessions() as session:
            repo.finish_job(session, job_id=job_id, state="cancelled")
        return "cancelled"
    except (ProfilekitError, ValueError) as exc:  # bad data, unknown pool, bad hyperparameters
        with sessions() as session:
            repo.finish_job(session, job_id=job_id, state="failed", error=str(exc))
        return "failed"
    except Exception as exc:  # a bug or the machine: record it rather than leave the job running
        log.exception("job %s crashed", job_id)
        with sessions() as session:
            repo.finish_job(session, job_id=job_id, state="failed", error=f"internal error: {exc!r}")
        return "failed"
    return "succeeded"


class _Reporter:
    """Progress callback: writes progress and a heartbeat at most every `every` seconds, checks cancel."""

    def __init__(self, job_id: str, sessions, every: float = 1.0):
        self.job_id, self.sessions, self.every, self.last = job_id, sessions, every, 0.0
        self.losses: list[float] = []

    def __call__(self, progress) -> None:
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
            if repo.heartbeat(session, job_id=self.job_id, progress=data):
                raise JobCancelled()


def _train(job_id: str, profile_ids: list[str], params: dict, *, sessions, cache: EngineCache) -> None:
    from profilekit.training import ProfileData, TrainConfig, train_profiles

    with sessions() as session:
        pool_row = repo.get_pool(session, pool_hash=params["pool_hash"]) if params.get("pool_hash") else None
        data, example_ids = [], []
        for profile_id in profile_ids:
            profile = repo.get_profile(session, profile_id=profile_id)
            examples = repo.examples_of(session, profile_id=profile_id)
            if not examples:
                raise ProfilekitError(f"profile {profile_id} has no examples")
            labels = tuple(profile.labels) if profile.labels else None
            data.append(ProfileData(profile_id, [e.text for e in examples], [e.label for e in examples], labels))
            example_ids.append([e.id for e in examples])
    engine = cache.engine_for(pool_row)
    config = TrainConfig(**params.get("train", {}))
    method = params["method"]
    reporter = _Reporter(job_id, sessions)
    results = train_profiles(engine, data, method, config=config, callback=reporter, **params.get("method_config", {}))
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
    with sessions() as session:
        repo.write_results(session, job=repo.get_job(session, job_id=job_id), records=records)


def _build_pool(job_id: str, profile_ids: list[str], params: dict, *, sessions, cache: EngineCache) -> None:
    from profilekit.pool import save_pool
    from profilekit.pool.warm import build_warm_pool
    from profilekit.training import ProfileData, TrainConfig

    with sessions() as session:
        data = []
        for profile_id in profile_ids:
            examples = repo.examples_of(session, profile_id=profile_id)
            data.append(ProfileData(profile_id, [e.text for e in examples], [e.label for e in examples]))
    engine = cache.engine_for(None)
    config = TrainConfig(**params.get("train", {}))
    pool = build_warm_pool(engine.backbone, data, config=config,
                           reduction_factor=params.get("reduction_factor", 16))
    folder = Path(cache.settings.data_dir) / "pools"
    path = save_pool(pool, folder / f"{pool.pool_hash}.safetensors")
    with sessions() as session:
        repo.ensure_pool(session, pool=pool, uri=str(path.resolve()), built_from=profile_ids)
        job = repo.get_job(session, job_id=job_id)
        job.progress = {**(job.progress or {}), "pool_hash": pool.pool_hash}
        session.commit()
        repo.finish_job(session, job_id=job_id, state="succeeded")
