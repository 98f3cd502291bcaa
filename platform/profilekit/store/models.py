"""The database is the source of truth: pools, profiles and their examples, artifacts, jobs and events."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
JOB_KINDS = ("train", "build_pool")


def now() -> datetime:
    return datetime.now(timezone.utc)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; every stored moment is UTC."""
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Pool(Base):
    __tablename__ = "pools"

    pool_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # random | warm | imported
    spec: Mapped[dict] = mapped_column(JSON)  # PoolSpec fields: a random pool is regenerated from it
    num_adapters: Mapped[int] = mapped_column(Integer)
    reduction_factor: Mapped[int] = mapped_column(Integer)
    backbone_id: Mapped[str] = mapped_column(String(200))
    uri: Mapped[str | None] = mapped_column(Text)  # a trained pool's bytes (store/blobs.py); None for random
    blob_sha256: Mapped[str | None] = mapped_column(String(64))  # sha256 of the bytes behind uri
    head_labels: Mapped[list | None] = mapped_column(JSON)  # the shared head's classes (warm pools)
    built_from: Mapped[list | None] = mapped_column(JSON)  # profile ids / authors a warm pool was trained on
    nbytes: Mapped[int] = mapped_column(Integer, default=0)  # resident size of its tensors
    name: Mapped[str | None] = mapped_column(String(200))  # given by whoever built it
    tenant: Mapped[str | None] = mapped_column(String(64))  # whose profiles built it (None: random, imported)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class PoolChunk(Base):
    """The bytes of a pool stored in the database (`db://pools/<hash>`), in chunks of `pool_chunk_bytes`."""

    __tablename__ = "pool_chunks"

    pool_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0, 1, … in the order of the bytes
    data: Mapped[bytes] = mapped_column(LargeBinary)


class TenantPool(Base):
    """The pool a tenant's new profiles train on when a job names none (else the random default)."""

    __tablename__ = "tenant_pools"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    pool_hash: Mapped[str] = mapped_column(ForeignKey("pools.pool_hash"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)


class Profile(Base):
    __tablename__ = "profiles"
    __table_args__ = (UniqueConstraint("tenant", "external_id", name="uq_profiles_tenant_external_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64), default="default")
    external_id: Mapped[str | None] = mapped_column(String(200))
    labels: Mapped[list | None] = mapped_column(JSON)  # label set; None = the labels of its examples
    current_artifact_id: Mapped[str | None] = mapped_column(
        ForeignKey("artifacts.id", use_alter=True, ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)

    examples: Mapped[list[Example]] = relationship(back_populates="profile", cascade="all, delete-orphan",
                                                   passive_deletes=True)
    current_artifact: Mapped[Artifact | None] = relationship(foreign_keys=[current_artifact_id],
                                                             post_update=True)


class Example(Base):
    __tablename__ = "examples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(200))
    split: Mapped[str | None] = mapped_column(String(8))  # train | holdout, set by the last training

    profile: Mapped[Profile] = relationship(back_populates="examples")


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "profile_id", name="uq_artifacts_job_id_profile_id"),
                      # the dashboard's largest profiles and latest trained, without a full sort
                      Index("ix_artifacts_stored_bytes", "stored_bytes"),
                      Index("ix_artifacts_created_at", "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    profile_id: Mapped[str] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    method: Mapped[str] = mapped_column(String(32))
    pool_hash: Mapped[str | None] = mapped_column(ForeignKey("pools.pool_hash"))
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the artifact's bytes (hard masks: a few hundred)
    payload_bytes: Mapped[int] = mapped_column(Integer)  # method payload (header + mask bits)
    stored_bytes: Mapped[int] = mapped_column(Integer)  # everything stored per profile
    hyperparameters: Mapped[dict] = mapped_column(JSON)
    metrics: Mapped[dict] = mapped_column(JSON)  # accuracy, macro_f1, holdout_loss, n_train, n_holdout, …
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_created_at", "state", "created_at"),
                      # a key names one request of one tenant: another tenant's use of it is none of theirs
                      UniqueConstraint("tenant", "idempotency_key", name="uq_jobs_tenant_idempotency_key"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # train | build_pool
    tenant: Mapped[str] = mapped_column(String(64), default="default")
    profile_ids: Mapped[list] = mapped_column(JSON, default=list)
    params: Mapped[dict] = mapped_column(JSON, default=dict)  # method, hyperparameters, pool
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[dict] = mapped_column(JSON, default=dict)  # epoch, step, total_steps, loss (this attempt)
    result: Mapped[dict | None] = mapped_column(JSON)  # per profile: which artifact is current and why; skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    events: Mapped[list[JobEvent]] = relationship(back_populates="job", cascade="all, delete-orphan",
                                                  order_by="JobEvent.id", passive_deletes=True)


class JobEvent(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    kind: Mapped[str] = mapped_column(String(16))  # state | progress | log | error
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSON)

    job: Mapped[Job] = relationship(back_populates="events")


class Worker(Base):
    """A worker process's heartbeat, written every few seconds while it runs (the dashboard's liveness);
    the job it runs is the running job whose `worker` names it."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # host:pid, as jobs.worker names it
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the key; the key is shown once
    tenant: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # admin | client
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rows_per_second: Mapped[float | None] = mapped_column(Float)  # predict rows it may send; None: the default


class KeySession(Base):
    """A dashboard sign-in. The browser's cookie holds a random id and this row its sha256, so neither the
    cookie nor the database gives away a key or a live session; signing out or revoking the key ends it."""

    __tablename__ = "key_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's random id
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # signed out or key revoked
