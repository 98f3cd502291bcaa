"""Repository functions: queries and writes of profiles, examples, pools, jobs and artifacts, shared by
the API's services, the workers and the command line. Keyword-only arguments throughout."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from profilekit.data.profiles import MIN_ROWS
from profilekit.errors import AttemptLost, IdempotencyConflict, NotFound
from profilekit.store.models import Artifact, Example, Job, JobEvent, Pool, Profile, TenantPool, Worker, now


def request_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


# ---- pools ---------------------------------------------------------------------------------------
def ensure_pool(session: Session, *, pool, uri: str | None = None, blob_sha256: str | None = None,
                built_from: list | None = None, name: str | None = None, tenant: str | None = None) -> Pool:
    """Register a pool by its hash (idempotent). `uri`, `blob_sha256`: where its bytes are stored
    (store/blobs.py); none for a random pool, regenerated from its spec."""
    row = session.get(Pool, pool.pool_hash)
    if row is None:
        row = Pool(pool_hash=pool.pool_hash, source=pool.spec.source, spec=asdict(pool.spec),
                   num_adapters=pool.num_adapters, reduction_factor=pool.spec.reduction_factor,
                   backbone_id=pool.spec.backbone_id, uri=uri, blob_sha256=blob_sha256, nbytes=pool.nbytes(),
                   built_from=built_from,
                   head_labels=list(pool.head.labels) if pool.head is not None else None, name=name, tenant=tenant)
        try:
            with session.begin_nested():  # two workers may register the same pool at once
                session.add(row)
        except IntegrityError:
            row = session.get(Pool, pool.pool_hash)
    return row


def get_pool(session: Session, *, pool_hash: str) -> Pool:
    row = session.get(Pool, pool_hash)
    if row is None:
        raise NotFound(f"unknown pool {pool_hash}")
    return row


def list_pools(session: Session, *, tenant: str | None = None) -> list[Pool]:
    """Pools newest first: all of them, or those a tenant built and its default."""
    query = select(Pool).order_by(Pool.created_at.desc())
    if tenant is not None:
        query = query.where((Pool.tenant == tenant) | (Pool.pool_hash == tenant_pool(session, tenant=tenant)))
    return list(session.scalars(query))


def tenant_pool(session: Session, *, tenant: str) -> str | None:
    """The hash of the pool the tenant's jobs train on when they name none; None: the random default."""
    return session.scalar(select(TenantPool.pool_hash).where(TenantPool.tenant == tenant))


def set_tenant_pool(session: Session, *, tenant: str, pool_hash: str | None) -> None:
    """Make a registered pool the tenant's default (None: back to the random default). One statement each
    way, an upsert or a delete, so requests setting the same tenant's default at once never trip over a
    row another one inserted or removed: the last to commit wins."""
    if pool_hash is None:
        session.execute(delete(TenantPool).where(TenantPool.tenant == tenant))
        return
    get_pool(session, pool_hash=pool_hash)
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name]
    session.execute(insert(TenantPool).values(tenant=tenant, pool_hash=pool_hash, updated_at=now())
                    .on_conflict_do_update(index_elements=[TenantPool.tenant],
                                           set_={"pool_hash": pool_hash, "updated_at": now()}))


def pool_defaults(session: Session) -> dict[str, list[str]]:
    """pool hash → the tenants whose default it is."""
    out: dict[str, list[str]] = {}
    rows = session.execute(select(TenantPool.tenant, TenantPool.pool_hash).order_by(TenantPool.tenant))
    for tenant, pool_hash in rows:
        out.setdefault(pool_hash, []).append(tenant)
    return out


# ---- profiles and examples -------------------------------------------------------------------------
def get_profile(session: Session, *, profile_id: str, tenant: str | None = None) -> Profile:
    row = session.get(Profile, profile_id)
    if row is None or (tenant is not None and row.tenant != tenant):
        raise NotFound(f"unknown profile {profile_id}")
    return row


def create_profile(session: Session, *, tenant: str = "default", external_id: str | None = None,
                   labels: list[str] | None = None) -> Profile:
    profile = Profile(tenant=tenant, external_id=external_id, labels=labels)
    session.add(profile)
    session.flush()
    return profile


def upsert_author_profiles(session: Session, *, rows, tenant: str = "default",
                           min_rows: int = MIN_ROWS) -> list[Profile]:
    """One profile per author (external_id = author) with at least `min_rows` rows; rows already stored
    for that profile (same text and label) are not added twice."""
    by_author: dict[str, list] = {}
    for row in rows:
        by_author.setdefault(row.author, []).append(row)
    profiles = []
    for author, author_rows in by_author.items():
        if len(author_rows) < min_rows:
            continue
        profile = session.scalar(select(Profile).where(Profile.tenant == tenant, Profile.external_id == author))
        if profile is None:
            profile = create_profile(session, tenant=tenant, external_id=author)
        add_examples(session, profile=profile, rows=[(r.text, r.label) for r in author_rows])
        profiles.append(profile)
    return profiles


def add_examples(session: Session, *, profile: Profile, rows: list[tuple[str, str]]) -> int:
    known = set(session.execute(select(Example.text, Example.label).where(Example.profile_id == profile.id)).all())
    added = 0
    for text, label in rows:
        if (text, label) not in known:
            session.add(Example(profile_id=profile.id, text=text, label=label))
            known.add((text, label))
            added += 1
    profile.updated_at = now()
    session.flush()
    return added


def largest_profiles(session: Session, *, tenant: str, count: int) -> list[str]:
    """The ids of the tenant's `count` profiles with the most examples in two or more labels (the
    users a warm pool is best built from), largest first."""
    query = (select(Example.profile_id).join(Profile, Profile.id == Example.profile_id)
             .where(Profile.tenant == tenant).group_by(Example.profile_id)
             .having(func.count(func.distinct(Example.label)) >= 2)
             .order_by(func.count().desc(), Example.profile_id).limit(count))
    return list(session.scalars(query))


def example_counts(session: Session, *, profile_ids: list[str]) -> dict[str, tuple[int, int]]:
    """profile id → (examples, distinct labels), one grouped query; profiles without examples are absent."""
    query = (select(Example.profile_id, func.count(), func.count(func.distinct(Example.label)))
             .where(Example.profile_id.in_(profile_ids)).group_by(Example.profile_id))
    return {pid: (rows, labels) for pid, rows, labels in session.execute(query)}


def examples_of(session: Session, *, profile_id: str) -> list[Example]:
    return list(session.scalars(select(Example).where(Example.profile_id == profile_id).order_by(Example.id)))


def current_artifact(session: Session, *, profile: Profile) -> Artifact | None:
    return session.get(Artifact, profile.current_artifact_id) if profile.current_artifact_id else None


def profile_status(session: Session, *, profile: Profile) -> str:
    """new (no job yet), queued/running (latest job), ready (has an artifact), failed."""
    jobs = session.scalars(select(Job).where(Job.tenant == profile.tenant).order_by(Job.created_at.desc()))
    latest = next((j for j in jobs if profile.id in j.profile_ids), None)
    if latest is not None and latest.state in ("queued", "running"):
        return latest.state if profile.current_artifact_id is None else f"ready ({latest.state} retraining)"
    if profile.current_artifact_id is not None:
        return "ready"
    return latest.state if latest is not None else "new"


def delete_profile(session: Session, *, profile: Profile) -> list[str]:
    """Delete a profile with its examples and artifacts; returns the deleted artifact ids."""
    artifact_ids = list(session.scalars(select(Artifact.id).where(Artifact.profile_id == profile.id)))
    session.execute(update(Profile).where(Profile.id == profile.id).values(current_artifact_id=None))
    session.execute(delete(Artifact).where(Artifact.profile_id == profile.id))
    session.execute(delete(Example).where(Example.profile_id == profile.id))
    session.execute(delete(Profile).where(Profile.id == profile.id))
    return artifact_ids


# ---- jobs ------------------------------------------------------------------------------------------
def create_job(session: Session, *, kind: str, profile_ids: list[str], params: dict, tenant: str = "default",
               max_attempts: int = 3, idempotency_key: str | None = None) -> tuple[Job, bool]:
    """→ (job, created). The same idempotency key with the same request returns the tenant's first job; keys
    are the tenant's own (another tenant's use of the same key is neither found nor revealed)."""
    body_hash = request_hash({"kind": kind, "profile_ids": profile_ids, "params": params, "tenant": tenant})
    if idempotency_key is not None:
        existing = session.scalar(select(Job).where(Job.tenant == tenant, Job.idempotency_key == idempotency_key))
        if existing is not None:
            if existing.request_hash != body_hash:
                raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was used for a different request")
            return existing, False
    job = Job(kind=kind, tenant=tenant, profile_ids=list(profile_ids), params=params, state="queued",
              max_attempts=max_attempts, idempotency_key=idempotency_key, request_hash=body_hash, progress={})
    session.add(job)
    session.flush()
    add_event(session, job_id=job.id, kind="state", message="queued")
    return job, True


def get_job(session: Session, *, job_id: str, tenant: str | None = None) -> Job:
    job = session.get(Job, job_id)
    if job is None or (tenant is not None and job.tenant != tenant):
        raise NotFound(f"unknown job {job_id}")
    return job


def list_jobs(session: Session, *, state: str | None = None, tenant: str | None = None, limit: int = 100) -> list[Job]:
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if state is not None:
        query = query.where(Job.state == state)
    if tenant is not None:
        query = query.where(Job.tenant == tenant)
    return list(session.scalars(query))


def add_event(session: Session, *, job_id: str, kind: str, message: str, data: dict | None = None) -> None:
    session.add(JobEvent(job_id=job_id, kind=kind, message=message, data=data))


def claim_job(session: Session, *, job_id: str, worker: str) -> Job | None:
    """Atomically move a queued job to running (one claimant wins); None if it is not claimable. A new
    attempt starts with empty progress and result, so a retry never shows the previous attempt's."""
    moment = now()
    claimed = session.execute(
        update(Job).where(Job.id == job_id, Job.state == "queued", Job.cancel_requested.is_(False))
        .values(state="running", attempts=Job.attempts + 1, started_at=moment, heartbeat_at=moment, worker=worker,
                progress={}, result=None)
    ).rowcount
    if not claimed:
        session.rollback()
        return None
    job = session.get(Job, job_id)
    session.refresh(job)
    add_event(session, job_id=job_id, kind="state", message=f"running (attempt {job.attempts}) on {worker}")
    session.commit()
    return job


def _owned(job_id: str, attempt: int | None) -> tuple:
    """The rows an attempt may still write to: its job, running, at that attempt (None: any attempt)."""
    where = (Job.id == job_id,)
    return where if attempt is None else where + (Job.state == "running", Job.attempts == attempt)


def heartbeat(session: Session, *, job_id: str, progress: dict, attempt: int | None = None) -> bool:
    """Record progress; returns whether cancellation was requested. Given its `attempt`, raises AttemptLost
    when the job was taken from it (re-queued as an orphan, or ended), so a zombie stops training."""
    written = session.execute(update(Job).where(*_owned(job_id, attempt))
                              .values(progress=progress, heartbeat_at=now())).rowcount
    if not written:
        session.rollback()
        raise AttemptLost(f"job {job_id}: attempt {attempt} is no longer running here")
    cancel = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    session.commit()
    return bool(cancel)


def hand_back_job(session: Session, *, job_id: str, reason: str, attempt: int | None = None) -> None:
    """A running job its worker gives back unfinished because it is stopping: queued again, progress cleared,
    and the attempt not counted (a stop is not the job's failure); given its `attempt`, only while that
    attempt still owns it."""
    handed = session.execute(update(Job).where(*_owned(job_id, attempt), Job.state == "running")
                             .values(state="queued", worker=None, progress={}, attempts=Job.attempts - 1)).rowcount
    if handed:
        add_event(session, job_id=job_id, kind="state", message=f"re-queued: {reason}")
    session.commit()


def finish_job(session: Session, *, job_id: str, state: str, error: str | None = None,
               attempt: int | None = None) -> bool:
    """End the job; given its `attempt`, only while that attempt still owns it. Returns whether it did."""
    ended = session.execute(update(Job).where(*_owned(job_id, attempt))
                            .values(state=state, error=error, finished_at=now())).rowcount
    if not ended:
        session.rollback()
        return False
    add_event(session, job_id=job_id, kind="error" if error else "state", message=error or state)
    session.commit()
    return True


def request_cancel(session: Session, *, job_id: str) -> Job:
    job = get_job(session, job_id=job_id)
    if job.state == "queued":
        job.state, job.finished_at = "cancelled", now()
        add_event(session, job_id=job_id, kind="state", message="cancelled before it started")
    elif job.state == "running":
        job.cancel_requested = True
        add_event(session, job_id=job_id, kind="log", message="cancel requested")
    session.commit()
    return job


def requeue_stale(session: Session, *, stale_seconds: float) -> list[str]:
    """Running jobs whose heartbeat is older than `stale_seconds` and whose worker is gone (its own
    heartbeat in `workers` is as old, or it stopped) go back to queued, or to failed once out of attempts.
    A live worker in a slow phase (loading a model, a long step) keeps its job; a hung one shows on the
    dashboard. Each move is one conditional UPDATE on the attempt seen, so when every worker reconciles at
    once exactly one moves a job; returns the ids this caller re-queued (for it to send again)."""
    cutoff = now() - timedelta(seconds=stale_seconds)
    alive = select(Worker.name).where(Worker.heartbeat_at >= cutoff, Worker.stopped_at.is_(None))
    stale = session.execute(select(Job.id, Job.attempts, Job.max_attempts)
                            .where(Job.state == "running", Job.heartbeat_at < cutoff,
                                   Job.worker.is_(None) | Job.worker.not_in(alive))).all()
    requeued = []
    for job_id, attempts, max_attempts in stale:
        still_stale = (Job.id == job_id, Job.state == "running", Job.attempts == attempts, Job.heartbeat_at < cutoff)
        if attempts >= max_attempts:
            error = f"worker stopped during each of {attempts} attempts"
            values, event = {"state": "failed", "finished_at": now(), "error": error}, ("error", error)
        else:
            values = {"state": "queued", "worker": None}
            event = ("state", f"re-queued: its worker stopped sending heartbeats (attempt {attempts})")
        moved = update(Job).where(*still_stale).values(**values).execution_options(synchronize_session="fetch")
        if session.execute(moved).rowcount:
            add_event(session, job_id=job_id, kind=event[0], message=event[1])
            if values["state"] == "queued":
                requeued.append(job_id)
        session.commit()
    return requeued


def waiting_jobs(session: Session, *, older_than: float) -> list[str]:
    """Queued jobs created more than `older_than` seconds ago, oldest first: the ones to send again when
    the broker's queue is empty (it lost their messages)."""
    cutoff = now() - timedelta(seconds=older_than)
    return list(session.scalars(select(Job.id).where(Job.state == "queued", Job.created_at < cutoff)
                                .order_by(Job.created_at)))


def orphaned_jobs(session: Session, *, stale_seconds: float) -> list[str]:
    """Jobs to enqueue again on worker start: running ones whose worker stopped sending heartbeats
    (`requeue_stale`) and all queued ones (the broker may have lost them)."""
    requeue_stale(session, stale_seconds=stale_seconds)
    return list(session.scalars(select(Job.id).where(Job.state == "queued").order_by(Job.created_at)))


def write_results(session: Session, *, job_id: str, records: list[dict], attempt: int | None = None,
                  decide=None, skipped: list[dict] | None = None) -> dict:
    """Store the artifacts of a finished training job, in one transaction with its end state; returns the
    job's result. Every artifact is kept as a version of its profile; `decide(current_metrics,
    new_metrics) -> (promote, reason)` says whether it becomes current (default: always). Profiles deleted
    while the job trained are skipped and reported. A retry of the same job updates its own artifact rows
    instead of adding new ones; an attempt that no longer owns the job raises AttemptLost and writes nothing."""
    job = session.scalar(select(Job).where(*_owned(job_id, attempt)).with_for_update())
    if job is None:
        session.rollback()
        raise AttemptLost(f"job {job_id}: attempt {attempt} is no longer running here; its results are dropped")
    outcomes, skipped = [], list(skipped or [])
    for record in records:
        # locked, so a concurrent delete waits for this transaction or has already removed the profile
        profile = session.scalar(select(Profile).where(Profile.id == record["profile_id"]).with_for_update())
        if profile is None:
            skipped.append({"id": record["profile_id"], "reason": "deleted while the job trained"})
            continue
        outcomes.append(_store_artifact(session, job=job, profile=profile, record=record, decide=decide))
    job.state, job.finished_at, job.error = "succeeded", now(), None
    job.result = {"profiles": outcomes, "skipped": skipped}
    add_event(session, job_id=job.id, kind="state", message="succeeded" + (
        f" ({len(skipped)} profile(s) skipped: deleted)" if skipped else ""))
    session.commit()
    return job.result


def _store_artifact(session: Session, *, job: Job, profile: Profile, record: dict, decide) -> dict:
    """One profile's new artifact row (or this job's earlier attempt's, updated), made current or not."""
    artifact = session.scalar(select(Artifact).where(Artifact.job_id == job.id, Artifact.profile_id == profile.id))
    if artifact is None:
        artifact = Artifact(job_id=job.id, profile_id=profile.id)
        session.add(artifact)
    for field in ("method", "pool_hash", "payload", "payload_bytes", "stored_bytes", "hyperparameters", "metrics"):
        setattr(artifact, field, record[field])
    session.flush()
    current = current_artifact(session, profile=profile)
    if current is None or current.id == artifact.id:
        promote, reason = True, "the profile had no other artifact"
    elif decide is None:
        promote, reason = True, "promotion policy always"
    else:
        promote, reason = decide(current.metrics, artifact.metrics)
    if promote:
        profile.current_artifact_id = artifact.id
        profile.updated_at = now()
        splits = record.get("splits", {})
        for example in examples_of(session, profile_id=profile.id):
            example.split = splits.get(example.id)
    return {"id": profile.id, "artifact_id": artifact.id, "promoted": promote,
            "current_artifact_id": profile.current_artifact_id, "reason": reason,
            "accuracy": artifact.metrics.get("accuracy"),
            "previous_accuracy": current.metrics.get("accuracy") if current is not None else None}


def list_artifacts(session: Session, *, profile_id: str) -> list[Artifact]:
    """Every artifact version of a profile, newest first (payloads not loaded)."""
    return list(session.scalars(select(Artifact).options(defer(Artifact.payload))
                                .where(Artifact.profile_id == profile_id)
                                .order_by(Artifact.created_at.desc(), Artifact.id)))


def promote_artifact(session: Session, *, profile: Profile, artifact_id: str) -> Artifact:
    """Make one of the profile's artifact versions its current one (a rollback); NotFound for another's."""
    artifact = session.get(Artifact, artifact_id, options=[defer(Artifact.payload)])
    if artifact is None or artifact.profile_id != profile.id:
        raise NotFound(f"unknown artifact {artifact_id} of profile {profile.id}")
    profile.current_artifact_id = artifact.id
    profile.updated_at = now()
    session.flush()
    return artifact


# ---- workers -----------------------------------------------------------------------------------------
def beat_worker(session: Session, *, name: str, stopped: bool = False) -> None:
    """A worker is alive (or, with stopped=True, has shut down cleanly)."""
    moment = now()
    row = session.get(Worker, name)
    if row is None:
        row = Worker(name=name, started_at=moment)
        session.add(row)
    row.heartbeat_at, row.stopped_at = moment, moment if stopped else None
    session.commit()


def list_workers(session: Session, *, limit: int = 100) -> list[Worker]:
    """Workers by their latest heartbeat, newest first."""
    return list(session.scalars(select(Worker).order_by(Worker.heartbeat_at.desc()).limit(limit)))
