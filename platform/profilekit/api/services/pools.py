"""Pools: warm pools built from a tenant's profiles (a job), the list, and each tenant's default."""

from __future__ import annotations

from profilekit.api.auth import Caller
from profilekit.api.schemas import DefaultPool, PoolBuild, PoolOut
from profilekit.api.services import retry_lost_race
from profilekit.api.services.profiles import visible_profile
from profilekit.errors import ConfigError
from profilekit.jobs import create_pool_job, enqueue
from profilekit.store import repo


def pool_out(pool, defaults: dict[str, list[str]]) -> PoolOut:
    return PoolOut(pool_hash=pool.pool_hash, name=pool.name, source=pool.source, num_adapters=pool.num_adapters,
                   tenant=pool.tenant, built_from=pool.built_from, head_labels=pool.head_labels, nbytes=pool.nbytes,
                   default_for=defaults.get(pool.pool_hash, []), created_at=pool.created_at)


def build_pool(session, caller: Caller, body: PoolBuild, *, runtime, idempotency_key: str | None):
    """A build_pool job over the tenant's profiles, sent to the workers."""
    tenant = body.tenant or caller.tenant
    if body.profile_ids is not None:
        profiles = [visible_profile(session, caller, pid) for pid in body.profile_ids]
        ids = [p.id for p in profiles]
        others = {p.tenant for p in profiles} - {tenant}
        if others:
            raise ConfigError(f"profiles of tenant(s) {sorted(others)} cannot build a pool of tenant {tenant!r}")
    else:
        ids = repo.largest_profiles(session, tenant=tenant, count=body.largest)
        if len(ids) < 2:
            raise ConfigError(f"tenant {tenant!r} has {len(ids)} profile(s) with examples in two or more labels; "
                              "a warm pool needs two")

    def write(session):
        job = create_pool_job(session, profile_ids=ids, tenant=tenant, name=body.name, set_default=body.set_default,
                              train=body.train, reduction_factor=body.reduction_factor,
                              idempotency_key=idempotency_key)
        session.commit()
        return job

    job = retry_lost_race(session, write)
    if job.state == "queued":
        enqueue(runtime.celery, job.id)
    return job


def list_pools(session, caller: Caller) -> list[PoolOut]:
    defaults = repo.pool_defaults(session)
    pools = repo.list_pools(session, tenant=None if caller.is_admin else caller.tenant)
    return [pool_out(p, defaults) for p in pools]


def set_default(session, caller: Caller, body: DefaultPool) -> list[PoolOut]:
    def write(session):
        repo.set_tenant_pool(session, tenant=body.tenant or caller.tenant, pool_hash=body.pool_hash)
        session.commit()

    retry_lost_race(session, write)  # two first defaults of a tenant at once: the later one wins
    return list_pools(session, caller)
