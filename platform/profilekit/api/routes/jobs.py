from __future__ import annotations

from fastapi import APIRouter, Header, HTTPException, Query
from sqlalchemy import select

from profilekit.api.deps import CurrentKey, RuntimeDep, SessionDep
from profilekit.api.routes.profiles import visible_profile
from profilekit.api.schemas import EventOut, JobOut, TrainRequest
from profilekit.errors import UnknownMethodError
from profilekit.jobs import enqueue, method_name
from profilekit.onboarding import enqueue_training, ensure_default_pool
from profilekit.store import repo
from profilekit.store.models import JobEvent

router = APIRouter(prefix="/jobs", tags=["jobs"])


def job_out(job) -> JobOut:
    progress = {k: v for k, v in (job.progress or {}).items() if k != "losses"}
    return JobOut(id=job.id, kind=job.kind, state=job.state, profile_ids=job.profile_ids, params=job.params,
                  progress=progress, attempts=job.attempts, error=job.error, created_at=job.created_at,
                  started_at=job.started_at, finished_at=job.finished_at)


def visible_job(session, caller, job_id: str):
    job = session.get(repo.Job, job_id)
    if job is None or not caller.sees(job.tenant):
        raise HTTPException(404, f"unknown job {job_id}")
    return job


@router.post("", status_code=202, response_model=JobOut)
def start_training(body: TrainRequest, session: SessionDep, caller: CurrentKey, runtime: RuntimeDep,
                   idempotency_key: str | None = Header(None, max_length=200)) -> JobOut:
    """Train one or many profiles in one job (shared batches). Same Idempotency-Key and body: the same
    job again; same key, different body: 422."""
    profiles = [visible_profile(session, caller, pid) for pid in dict.fromkeys(body.profile_ids)]
    method = method_name(body.method)
    try:
        from profilekit.methods.registry import get_method
        from profilekit.training import TrainConfig

        uses_pool = get_method(method).uses_pool
        TrainConfig(**body.train)
    except (UnknownMethodError, TypeError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from exc
    pool_hash = ensure_default_pool(session, runtime.settings) if uses_pool else None
    try:
        jobs = enqueue_training(session, profiles=profiles, method=method, pool_hash=pool_hash,
                                per_job=len(profiles), method_config=body.hyperparameters, tenant=caller.tenant,
                                idempotency_key=idempotency_key, train=body.train)
    except (TypeError, ValueError) as exc:
        session.rollback()
        raise HTTPException(422, f"bad hyperparameters: {exc}") from exc
    session.commit()
    job = jobs[0]
    if job.state == "queued":
        enqueue(runtime.celery, job.id)  # a repeated request re-sends it; a claimed job is never run twice
    return job_out(job)


@router.get("", response_model=list[JobOut])
def list_jobs(session: SessionDep, caller: CurrentKey, state: str | None = Query(None, max_length=16),
              limit: int = Query(100, ge=1, le=1000)) -> list[JobOut]:
    jobs = repo.list_jobs(session, state=state, tenant=None if caller.is_admin else caller.tenant, limit=limit)
    return [job_out(j) for j in jobs]


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, session: SessionDep, caller: CurrentKey) -> JobOut:
    return job_out(visible_job(session, caller, job_id))


@router.get("/{job_id}/events", response_model=list[EventOut])
def job_events(job_id: str, session: SessionDep, caller: CurrentKey,
               after: int = Query(0, ge=0, le=2**63 - 1),  # a database integer
               limit: int = Query(500, ge=1, le=5000)) -> list[EventOut]:
    visible_job(session, caller, job_id)
    events = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after)
                             .order_by(JobEvent.id).limit(limit))
    return [EventOut(at=e.at, kind=e.kind, message=e.message, data=e.data) for e in events]


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: str, session: SessionDep, caller: CurrentKey) -> JobOut:
    visible_job(session, caller, job_id)
    return job_out(repo.request_cancel(session, job_id=job_id))
