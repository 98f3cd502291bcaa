from __future__ import annotations

from fastapi import APIRouter, Header, Query

from profilekit.api.deps import CurrentKey, RuntimeDep, SessionDep
from profilekit.api.openapi import errors
from profilekit.api.schemas import EventOut, JobOut, TrainRequest
from profilekit.api.services import jobs as service
from profilekit.jobs import JOB_STATES

STATE = "^(" + "|".join(JOB_STATES) + ")$"  # an unknown state is a typo to report, not an empty list

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("", status_code=202, response_model=JobOut, responses=errors(404, 409))
def start_training(body: TrainRequest, session: SessionDep, caller: CurrentKey, runtime: RuntimeDep,
                   idempotency_key: str | None = Header(None, max_length=200)) -> JobOut:
    """Train one or many profiles in one job (shared batches). Same Idempotency-Key and body: the same
    job again; same key, different body: 422."""
    return service.job_out(service.start_training(session, caller, body, runtime=runtime,
                                                  idempotency_key=idempotency_key))


@router.get("", response_model=list[JobOut])
def list_jobs(session: SessionDep, caller: CurrentKey,
              state: str | None = Query(None, pattern=STATE, description="one of " + ", ".join(JOB_STATES)),
              limit: int = Query(100, ge=1, le=1000)) -> list[JobOut]:
    return [service.job_out(j) for j in service.list_jobs(session, caller, state=state, limit=limit)]


@router.get("/{job_id}", response_model=JobOut, responses=errors(404))
def get_job(job_id: str, session: SessionDep, caller: CurrentKey) -> JobOut:
    return service.job_out(service.visible_job(session, caller, job_id))


@router.get("/{job_id}/events", response_model=list[EventOut], responses=errors(404))
def job_events(job_id: str, session: SessionDep, caller: CurrentKey,
               after: int = Query(0, ge=0, le=2**63 - 1),  # a database integer
               limit: int = Query(500, ge=1, le=5000)) -> list[EventOut]:
    return service.job_events(session, caller, job_id, after=after, limit=limit)


@router.post("/{job_id}/cancel", response_model=JobOut, responses=errors(404))
def cancel_job(job_id: str, session: SessionDep, caller: CurrentKey) -> JobOut:
    return service.job_out(service.cancel_job(session, caller, job_id))
