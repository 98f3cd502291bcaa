"""Request and response bodies (kept apart from the ORM models), with the examples /docs shows, and the
JSON shapes of error answers."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from profilekit.data.rows import MAX_NAME, lone_surrogate
from profilekit.jobs import Promotion, TrainConfig


def unusable_value(value, where: str = "body") -> str | None:
    """Where and why a value of a JSON body cannot be used, or None: JSON may carry "\\ud800" (no UTF-8
    store or tokenizer takes it) and "\\u0000" (PostgreSQL text holds no NUL; SQLite would keep it), and
    Python's reader takes NaN, Infinity and numbers too large for a float (1e400) as numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} is {value}, not a finite number"
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where} contains a NUL character (\\u0000)"
        if lone_surrogate(value):
            return f"{where} contains a lone surrogate escape (\\ud800-\\udfff), not valid Unicode"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = unusable_value(key, f"{where} (a key)") or unusable_value(item, f"{where}.{key}")
            if problem:
                return problem
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = unusable_value(item, f"{where}[{index}]")
            if problem:
                return problem
    return None


class RequestBody(BaseModel):
    """A JSON request body: refused (422, naming the field) when any string in it holds a NUL or a lone
    surrogate, or any number is not finite, so nothing the client sends is stored on one database and
    refused by another; and when it names a field the request does not have (a misspelt or misplaced
    setting is not silently dropped)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _usable_values(cls, data):
        problem = unusable_value(data)
        if problem:
            raise ValueError(problem)
        return data


def utc(value: datetime) -> datetime:
    """Every timestamp in UTC with its offset ("…Z"), whatever the database returned: SQLite gives naive
    datetimes (stored in UTC), PostgreSQL aware ones in the session's time zone."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


Timestamp = Annotated[datetime, AfterValidator(utc)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)]
MAX_LABELS = 1000  # a label set; each label costs its head a row of d+1 floats


def example(value: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


PROFILE_ID, JOB_ID, ARTIFACT_ID = "3f2b9c0e5d7a4b1c9e8f6a5b4c3d2e1f", "9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a", \
    "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
WHEN = "2026-11-30T12:00:00Z"


class ProfileCreate(RequestBody):
    model_config = example({"external_id": "reader-42", "labels": ["POLITICS", "SPORTS"]})

    external_id: str | None = Field(default=None, max_length=200)
    labels: list[Label] | None = Field(default=None, min_length=1, max_length=MAX_LABELS,
                                       description="The label set; default: labels of its examples")


class ArtifactInfo(BaseModel):
    model_config = example({"id": ARTIFACT_ID, "method": "xpeft_hard", "pool_hash": "c948f5d4" + "0" * 56,
                            "payload_bytes": 203, "stored_bytes": 6751,
                            "metrics": {"accuracy": 0.81, "macro_f1": 0.62, "n_train": 70, "n_holdout": 30},
                            "created_at": WHEN})

    id: str
    method: str
    pool_hash: str | None
    payload_bytes: int
    stored_bytes: int
    metrics: dict
    created_at: Timestamp


class ArtifactVersion(ArtifactInfo):
    """One artifact a job stored for a profile; `current` marks the one predictions use."""

    model_config = example(ArtifactInfo.model_config["json_schema_extra"]["examples"][0]
                           | {"job_id": JOB_ID, "current": True})

    job_id: str | None
    current: bool


PROFILE = {"id": PROFILE_ID, "external_id": "reader-42", "tenant": "acme", "status": "ready", "examples": 100,
           "labels": None, "artifact": ArtifactInfo.model_config["json_schema_extra"]["examples"][0],
           "created_at": WHEN, "updated_at": WHEN}


class ProfileOut(BaseModel):
    model_config = example(PROFILE)

    id: str
    external_id: str | None
    tenant: str
    status: str
    examples: int
    labels: list[str] | None
    artifact: ArtifactInfo | None
    created_at: Timestamp
    updated_at: Timestamp


class ProfilePage(BaseModel):
    model_config = example({"items": [PROFILE], "next_cursor": PROFILE_ID})

    items: list[ProfileOut]
    next_cursor: str | None


class UploadResult(BaseModel):
    model_config = example({"profiles": [{"id": PROFILE_ID, "external_id": "Ann Writer", "rows": 42}], "rows": 7637,
                            "skipped_authors": 903})

    profiles: list[dict]  # {id, external_id, added} or {id, external_id, rows}
    rows: int
    skipped_authors: int = Field(0, description="Authors left out: fewer than min_rows rows")


class TrainRequest(RequestBody):
    model_config = example({"profile_ids": [PROFILE_ID], "method": "xpeft_hard", "hyperparameters": {"k": 50},
                            "train": {"epochs": 10}, "promotion": {"policy": "if_not_worse", "tolerance": 0.02}})

    profile_ids: list[str] = Field(min_length=1, max_length=10_000)
    method: str = "xpeft_hard"
    hyperparameters: dict = Field(default_factory=dict, description="Fields of the method's config")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training settings; each is bounded")
    promotion: Promotion = Field(default_factory=Promotion, description="Whether each new artifact becomes its "
                                 "profile's current one; every artifact is kept as a version either way")


class JobOut(BaseModel):
    model_config = example({"id": JOB_ID, "kind": "train", "state": "running", "profile_ids": [PROFILE_ID],
                            "params": {"method": "xpeft_hard", "pool": "random-100", "train": {"epochs": 10}},
                            "progress": {"epoch": 2, "step": 7, "total_steps": 20, "loss": 0.88}, "attempts": 1,
                            "result": None, "error": None, "created_at": WHEN, "started_at": WHEN,
                            "finished_at": None})

    id: str
    kind: str
    state: str
    profile_ids: list[str]
    params: dict
    progress: dict = Field(description="The current attempt's progress (empty when an attempt starts)")
    attempts: int
    result: dict | None = Field(None, description="A finished training job: per profile, its new artifact and "
                                "whether it became current and why (`profiles`); profiles deleted meanwhile "
                                "(`skipped`)")
    error: str | None
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None


class EventOut(BaseModel):
    model_config = example({"at": WHEN, "kind": "progress", "message": "epoch 2 step 7/20 loss 0.8800",
                            "data": {"epoch": 2, "step": 7, "total_steps": 20, "loss": 0.88}})

    at: Timestamp
    kind: str
    message: str
    data: dict | None


class PredictItem(BaseModel):
    model_config = ConfigDict(extra="forbid")  # {"profile": …} is refused, not served as a row without a profile

    profile_id: str | None = Field(default=None, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is only whitespace; there is nothing to predict from")
        return text


class PredictRequest(RequestBody):
    model_config = example({"items": [{"profile_id": PROFILE_ID, "text": "Senate passes the budget"},
                                      {"text": "a row without a profile: the plain backbone, no label"}]})

    items: list[PredictItem] = Field(min_length=1, max_length=1024)
    timeout_ms: int | None = Field(default=None, ge=1, le=600_000, description=(
        "This request's own deadline: 429 at once when the queue's expected wait exceeds it, 504 (rows not "
        "computed) when it passes while they wait"))


class PredictResult(BaseModel):
    profile_id: str | None
    label: str | None
    scores: dict[str, float]
    artifact_version: str | None


class PredictResponse(BaseModel):
    model_config = example({"results": [
        {"profile_id": PROFILE_ID, "label": "POLITICS", "scores": {"POLITICS": 0.91, "SPORTS": 0.09},
         "artifact_version": ARTIFACT_ID},
        {"profile_id": None, "label": None, "scores": {}, "artifact_version": None}]})

    results: list[PredictResult]


class PoolBuild(RequestBody):
    """Build a warm pool from a tenant's profiles: the given ones, or its `largest` by examples."""

    model_config = example({"largest": 40, "tenant": "acme", "name": "acme news", "set_default": True,
                            "train": {"epochs": 10}})

    profile_ids: list[str] | None = Field(default=None, min_length=2, max_length=1000)
    largest: int | None = Field(default=None, ge=2, le=1000, description="the tenant's profiles with most examples")
    tenant: str | None = Field(default=None, max_length=64, description="whose profiles (default: the caller's)")
    name: str | None = Field(default=None, max_length=200)
    set_default: bool = Field(default=False, description="make it the tenant's default pool once built")
    reduction_factor: int = Field(default=16, ge=1, le=384)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _one_source(self):
        if (self.profile_ids is None) == (self.largest is None):
            raise ValueError("give either profile_ids or largest")
        return self


class PoolOut(BaseModel):
    model_config = example({"pool_hash": "c948f5d4" + "0" * 56, "name": "acme news", "source": "warm",
                            "num_adapters": 40, "tenant": "acme", "built_from": [PROFILE_ID],
                            "head_labels": ["POLITICS", "SPORTS"], "nbytes": 4_915_200, "default_for": ["acme"],
                            "created_at": WHEN})

    pool_hash: str
    name: str | None
    source: str
    num_adapters: int
    tenant: str | None
    built_from: list[str] | None
    head_labels: list[str] | None
    nbytes: int
    default_for: list[str]
    created_at: Timestamp


class DefaultPool(RequestBody):
    model_config = example({"pool_hash": "c948f5d4" + "0" * 56, "tenant": "acme"})

    pool_hash: str | None = Field(description="a registered pool; null: back to the random default", max_length=64)
    tenant: str | None = Field(default=None, max_length=64, description="default: the caller's tenant")

# ---- error answers: {"detail": …} always; what detail holds depends on the status ----------------------
KEY_ID = "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b"


class KeyCreate(RequestBody):
    """A client key belongs to one tenant; an admin key operates every tenant and so takes none."""

    model_config = example({"role": "client", "tenant": "acme", "name": "acme's batch importer"})

    role: Literal["admin", "client"] = "client"
    tenant: str | None = Field(default=None, min_length=1, max_length=64,
                               description="The client key's tenant (default: default); refused for admin keys")
    name: str | None = Field(default=None, max_length=200)
    rows_per_second: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Its predict rate "
                                          "limit (rows/s, 429 with Retry-After beyond); default: the server's")

    @field_validator("tenant")
    @classmethod
    def _admin_has_no_tenant(cls, tenant, info):
        if info.data.get("role") == "admin" and tenant not in (None, "default"):
            raise ValueError("an admin key operates every tenant, so it takes no tenant; "
                             "make a client key for one tenant instead")
        return tenant


class KeyOut(BaseModel):
    model_config = example({"id": KEY_ID, "tenant": "acme", "role": "client", "name": "acme's batch importer",
                            "created_at": WHEN, "revoked_at": None})

    id: str
    tenant: str
    role: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    rows_per_second: float | None = None  # its predict rate limit; None: the server's default


class KeyCreated(KeyOut):
    """The key itself is in this answer only: it is stored as a hash."""

    model_config = example({"id": KEY_ID, "key": "pk_…", "tenant": "acme", "role": "client", "name": None,
                            "created_at": WHEN, "revoked_at": None})

    key: str


class RowProblem(BaseModel):
    row: int = Field(description="1-based row (or line) of the upload; 0 for the file as a whole")
    reason: str


class ProfileProblem(BaseModel):
    id: str
    state: str | None = Field(None, description="409: the profile's state (new, queued, running, failed)")
    rows: int | None = Field(None, description="422: its examples")
    reason: str | None = Field(None, description="422: why a job cannot train it")


class ProfilesDetail(BaseModel):
    message: str
    profiles: list[ProfileProblem] = Field(default_factory=list)
    unknown_profile_ids: list[str] = Field(default_factory=list)


class Error(BaseModel):
    """401, 403, 413, 429: what went wrong, in words."""

    model_config = example({"detail": "missing or invalid API key (send 'Authorization: Bearer <key>')"})
    detail: str


class NotFoundError(BaseModel):
    """404: an unknown id (another tenant's ids are unknown too); a prediction lists every unknown profile."""

    model_config = example({"detail": {"message": "unknown profile nope-1", "unknown_profile_ids": ["nope-1"]}})
    detail: str | ProfilesDetail


class ConflictError(BaseModel):
    """409: the external id is taken, or (predict) profiles have no trained artifact yet, with their states."""

    model_config = example({"detail": {"message": f"profiles without a trained artifact: {PROFILE_ID} (queued)",
                                       "profiles": [{"id": PROFILE_ID, "state": "queued"}]}})
    detail: str | ProfilesDetail


class InvalidError(BaseModel):
    """422: a field out of bounds (detail lists each with its location), bad rows of an upload (errors lists
    them; nothing was stored), or profiles a job cannot train (detail.profiles names each)."""

    model_config = example({"detail": "1 bad row(s), none kept; row 3: text is missing or empty",
                            "errors": [{"row": 3, "reason": "text is missing or empty"}]})
    detail: str | list[dict] | ProfilesDetail
    errors: list[RowProblem] | None = None
