"""Training jobs: creation (checked before anything is queued), visibility, listing, events, cancel."""

from __future__ import annotations

from sqlalchemy import select

from profilekit.api.auth import Caller
from profilekit.api.schemas import EventOut, JobOut, TrainRequest
from profilekit.api.services import retry_lost_race
from profilekit.api.services.profiles import visible_profile
from profilekit.errors import NotFound
from profilekit.jobs import create_training_jobs, default_pool, enqueue
from profilekit.store import repo
from profilekit.store.models import Job, JobEvent


def job_out(job: Job) -> JobOut:
    progress = {k: v for k, v in (job.progress or {}).items() if k != "losses"}
    return JobOut(id=job.id, kind=job.kind, state=job.state, profile_ids=job.profile_ids, params=job.params,
                  progress=progress, attempts=job.attempts, result=job.result, error=job.error,
                  created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at)


def visible_job(session, caller: Caller, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or not caller.sees(job.tenant):
        raise NotFound(f"unknown job {job_id}")
    return job


def start_training(session, caller: Caller, body: TrainRequest, *, runtime, idempotency_key: str | None) -> Job:
    """One job for all the profiles (shared batches), sent to the workers. The same idempotency key with
    the same body returns the first job (sent again if still queued; a claimed job never runs twice)."""
    profiles = [visible_profile(session, caller, pid) for pid in dict.fromkeys(body.profile_ids)]
    ids = [p.id for p in profiles]

    def write(session):
        [job] = create_training_jobs(session, profile_ids=ids, method=body.method,
                                     pool=default_pool(runtime.settings, session, caller.tenant), train=body.train,
                                     method_config=body.hyperparameters, tenant=caller.tenant, per_job=len(ids),
                                     idempotency_key=idempotency_key, promotion=body.promotion)
        session.commit()
        return job

    job = retry_lost_race(session, write)  # the same key sent twice at once: one job
    if job.state == "queued":
        enqueue(runtime.celery, job.id)
    return job


def list_jobs(session, caller: Caller, *, state: str | None, limit: int) -> list[Job]:
    return repo.list_jobs(session, state=state, tenant=None if caller.is_admin else caller.tenant, limit=limit)


def job_events(session, caller: Caller, job_id: str, *, after: int, limit: int) -> list[EventOut]:
    visible_job(session, caller, job_id)
    events = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after)
                             .order_by(JobEvent.id).limit(limit))
    return [EventOut(at=e.at, kind=e.kind, message=e.message, data=e.data) for e in events]


def cancel_job(session, caller: Caller, job_id: str) -> Job:
    visible_job(session, caller, job_id)
    return repo.request_cancel(session, job_id=job_id)
