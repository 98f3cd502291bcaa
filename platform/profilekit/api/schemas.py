"""Request and response bodies (kept apart from the ORM models)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from profilekit.data.rows import lone_surrogate
from profilekit.jobs import TrainConfig


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


class ProfileCreate(RequestBody):
    external_id: str | None = Field(default=None, max_length=200)
    labels: list[str] | None = Field(default=None, description="The label set; default: labels of its examples")


class ArtifactInfo(BaseModel):
    id: str
    method: str
    pool_hash: str | None
    payload_bytes: int
    stored_bytes: int
    metrics: dict
    created_at: datetime


class ProfileOut(BaseModel):
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
    items: list[ProfileOut]
    next_cursor: str | None


class UploadResult(BaseModel):
    profiles: list[dict]  # {id, external_id, added} or {id, external_id, rows}
    rows: int
    skipped_authors: int = Field(0, description="Authors left out: fewer than min_rows rows")


class TrainRequest(RequestBody):
    profile_ids: list[str] = Field(min_length=1, max_length=10_000)
    method: str = "xpeft_hard"
    hyperparameters: dict = Field(default_factory=dict, description="Fields of the method's config")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training settings; each is bounded")


class JobOut(BaseModel):
    id: str
    kind: str
    state: str
    profile_ids: list[str]
    params: dict
    progress: dict
    attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class EventOut(BaseModel):
    at: datetime
    kind: str
    message: str
    data: dict | None


class PredictItem(BaseModel):
    profile_id: str | None = Field(default=None, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)


class PredictRequest(RequestBody):
    items: list[PredictItem] = Field(min_length=1, max_length=1024)


class PredictResult(BaseModel):
    profile_id: str | None
    label: str | None
    scores: dict[str, float]
    artifact_version: str | None


class PredictResponse(BaseModel):
    results: list[PredictResult]


class PoolBuild(RequestBody):
    """Build a warm pool from a tenant's profiles: the given ones, or its `largest` by examples."""

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
    pool_hash: str | None = Field(description="a registered pool; null: back to the random default", max_length=64)
    tenant: str | None = Field(default=None, max_length=64, description="default: the caller's tenant")
