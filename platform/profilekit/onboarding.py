"""Turning stored profiles into queued training jobs, and the default pool they train on."""

from __future__ import annotations

from profilekit.settings import Settings
from profilekit.store import repo

_DEFAULT_POOLS: dict[tuple, str] = {}


def ensure_default_pool(session, settings: Settings) -> str:
    """Register (once) the default random pool for the configured backbone; returns its hash."""
    from profilekit.backbone.loader import describe_backbone
    from profilekit.pool import PoolSpec, random_pool

    backbone_id, layers, hidden = describe_backbone(settings.backbone_path)
    key = (backbone_id, settings.default_pool_size)
    if key not in _DEFAULT_POOLS:
        pool = random_pool(PoolSpec(backbone_id, settings.default_pool_size, layers, hidden))
        repo.ensure_pool(session, pool=pool)
        _DEFAULT_POOLS[key] = pool.pool_hash
    elif session.get(repo.Pool, _DEFAULT_POOLS[key]) is None:  # another database
        del _DEFAULT_POOLS[key]
        return ensure_default_pool(session, settings)
    return _DEFAULT_POOLS[key]


def enqueue_training(session, *, profiles, method: str, pool_hash: str | None, epochs: int | None = None,
                     per_job: int = 16, method_config: dict | None = None, tenant: str = "default",
                     max_attempts: int = 3, idempotency_key: str | None = None, train: dict | None = None) -> list:
    """Create training jobs (not yet sent to the broker): `per_job` profiles share one job's batches."""
    from profilekit.methods.registry import get_method

    spec = get_method(method)
    if spec.uses_pool and pool_hash is None:
        raise ValueError(f"method {method} needs a pool")
    spec.make_config(**(method_config or {}))  # refuse bad hyperparameters before queueing
    train = dict(train or {}) | ({"epochs": epochs} if epochs else {})
    jobs = []
    for start in range(0, len(profiles), per_job):
        chunk = [p.id for p in profiles[start:start + per_job]]
        job, _ = repo.create_job(session, kind="train" if len(chunk) == 1 else "train_many", profile_ids=chunk,
                                 params={"method": method, "pool_hash": pool_hash if spec.uses_pool else None,
                                         "train": train, "method_config": method_config or {}},
                                 tenant=tenant, max_attempts=max_attempts, idempotency_key=idempotency_key)
        jobs.append(job)
    return jobs
