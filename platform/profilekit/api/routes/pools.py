"""Warm pools: built from a tenant's own profiles (admin), listed, and made a tenant's default."""

from __future__ import annotations

from fastapi import APIRouter, Header

from profilekit.api.deps import AdminKey, CurrentKey, RuntimeDep, SessionDep
from profilekit.api.openapi import errors
from profilekit.api.schemas import DefaultPool, JobOut, PoolBuild, PoolOut
from profilekit.api.services import pools as service
from profilekit.api.services.jobs import job_out

router = APIRouter(prefix="/pools", tags=["pools"])


@router.post("", status_code=202, response_model=JobOut, responses=errors(404, 409))
def build_pool(body: PoolBuild, session: SessionDep, caller: AdminKey, runtime: RuntimeDep,
               idempotency_key: str | None = Header(None, max_length=200)) -> JobOut:
    """Build a warm pool from a tenant's profiles with the most data (`largest`) or given ones: a job
    that trains one adapter per profile and a head they share. `set_default` makes it the tenant's
    default pool, on which its jobs then train."""
    return job_out(service.build_pool(session, caller, body, runtime=runtime, idempotency_key=idempotency_key))


@router.get("", response_model=list[PoolOut])
def list_pools(session: SessionDep, caller: CurrentKey) -> list[PoolOut]:
    """Pools with what built them; an admin sees all, a client its tenant's and its default."""
    return service.list_pools(session, caller)


@router.put("/default", response_model=list[PoolOut], responses=errors(404, 409))
def set_default(body: DefaultPool, session: SessionDep, caller: AdminKey) -> list[PoolOut]:
    """Make a pool the tenant's default (null: back to the random pool)."""
    return service.set_default(session, caller, body)
