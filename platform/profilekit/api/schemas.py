"""Request and response bodies (kept apart from the ORM models), with the examples /docs shows, and the
JSON shapes of error answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from profilekit.data.rows import lone_surrogate
from profilekit.jobs import Promotion, TrainConfig


def valid_unicode(value) -> bool:
    """No lone surrogates anywhere: JSON may carry "\\ud800", but no UTF-8 store or tokenizer takes it."""
    if isinstance(value, str):
        return not lone_surrogate(value)
    if isinstance(value, dict):
        return all(valid_unicode(k) and valid_unicode(v) for k, v in value.items())
    if isinstance(value, list):
        return all(valid_unicode(v) for v in value)
    return True


class RequestBody(BaseModel):
    """A JSON request body: refused (422) when any string in it holds a lone surrogate."""

    @model_validator(mode="before")
    @classmethod
    def _no_lone_surrogates(cls, data):
        if not valid_unicode(data):
            raise ValueError("strings must be valid Unicode, without lone surrogate escapes (\\ud800-\\udfff)")
        return data


def example(value: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


PROFILE_ID, JOB_ID, ARTIFACT_ID = "3f2b9c0e5d7a4b1c9e8f6a5b4c3d2e1f", "9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a", \
    "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
WHEN = "2026-11-30T12:00:00Z"


class ProfileCreate(RequestBody):
    model_config = example({"external_id": "reader-42", "labels": ["POLITICS", "SPORTS"]})

    external_id: str | None = Field(default=None, max_length=200)
    labels: list[str] | None = Field(default=None, description="The label set; default: labels of its examples")


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
    created_at: datetime


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
    created_at: datetime
    updated_at: datetime


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
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class EventOut(BaseModel):
    model_config = example({"at": WHEN, "kind": "progress", "message": "epoch 2 step 7/20 loss 0.8800",
                            "data": {"epoch": 2, "step": 7, "total_steps": 20, "loss": 0.88}})

    at: datetime
    kind: str
    message: str
    data: dict | None


class PredictItem(BaseModel):
    profile_id: str | None = Field(default=None, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)


class PredictRequest(RequestBody):
    model_config = example({"items": [{"profile_id": PROFILE_ID, "text": "Senate passes the budget"},
                                      {"text": "a row without a profile: the plain backbone, no label"}]})

    items: list[PredictItem] = Field(min_length=1, max_length=1024)


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
    created_at: datetime


class DefaultPool(RequestBody):
    model_config = example({"pool_hash": "c948f5d4" + "0" * 56, "tenant": "acme"})

    pool_hash: str | None = Field(description="a registered pool; null: back to the random default", max_length=64)
    tenant: str | None = Field(default=None, max_length=64, description="default: the caller's tenant")

# ---- error answers: {"detail": …} always; what detail holds depends on the status ----------------------
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
