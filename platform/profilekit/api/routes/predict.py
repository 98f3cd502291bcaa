"""Predictions for rows of any profiles, merged across requests by the dynamic batcher."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from profilekit.api.batcher import QueueFull
from profilekit.api.deps import CurrentKey, RuntimeDep
from profilekit.api.runtime import Row
from profilekit.api.schemas import PredictRequest, PredictResponse, PredictResult
from profilekit.serving import profile_status
from profilekit.store import repo
from profilekit.store.models import Artifact, Profile

router = APIRouter(tags=["predict"])


def resolve(runtime, caller, profile_ids: list[str]) -> dict[str, tuple[object, str]]:
    """profile id → (servable state, artifact version). All or nothing: unknown ids → 404 listing them,
    profiles without a trained artifact → 409 naming their state."""
    with runtime.sessions() as session:
        found = {p.id: p for p in session.scalars(select(Profile).where(Profile.id.in_(profile_ids)))
                 if caller.sees(p.tenant)}
        unknown = [pid for pid in profile_ids if pid not in found]
        if unknown:
            raise HTTPException(404, {"message": "unknown profiles", "unknown_profile_ids": unknown})
        untrained = {pid: profile_status(session, profile=p) for pid, p in found.items()
                     if p.current_artifact_id is None}
        if untrained:
            raise HTTPException(409, {"message": "profiles without a trained artifact",
                                      "profiles": [{"id": pid, "state": s} for pid, s in untrained.items()]})
        resolved = {}
        for pid, profile in found.items():
            artifact = session.get(Artifact, profile.current_artifact_id)
            pool_row = repo.get_pool(session, pool_hash=artifact.pool_hash) if artifact.pool_hash else None
            resolved[pid] = (runtime.state_for(artifact, pool_row), artifact.id)
    return resolved


@router.post("/predict", response_model=PredictResponse)
async def predict(body: PredictRequest, runtime: RuntimeDep, caller: CurrentKey) -> PredictResponse:
    """Label and class probabilities per item, with the artifact version that produced them. Items
    without profile_id use the plain backbone and get no label (profiles own the heads)."""
    began = time.perf_counter()
    ids = list(dict.fromkeys(i.profile_id for i in body.items if i.profile_id is not None))
    resolved = await run_in_threadpool(resolve, runtime, caller, ids) if ids else {}
    rows = [Row(resolved[i.profile_id][0] if i.profile_id else None, i.text) for i in body.items]
    try:
        predictions = await runtime.batcher.submit(rows)
    except QueueFull as exc:
        raise HTTPException(429, f"busy: {exc}", headers={"Retry-After": "1"}) from exc
    runtime.stats.record_request(time.perf_counter() - began)
    return PredictResponse(results=[
        PredictResult(profile_id=item.profile_id, label=p.label, scores=p.scores,
                      artifact_version=resolved[item.profile_id][1] if item.profile_id else None)
        for item, p in zip(body.items, predictions, strict=True)])
