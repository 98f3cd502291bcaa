"""Predictions for rows of any profiles, merged across requests by the dynamic batcher."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from profilekit.api.deps import CurrentKey, RuntimeDep
from profilekit.api.schemas import PredictRequest, PredictResponse, PredictResult
from profilekit.api.services.predict import resolve
from profilekit.serving import QueueFull

router = APIRouter(tags=["predict"])


@router.post("/predict", response_model=PredictResponse)
async def predict(body: PredictRequest, runtime: RuntimeDep, caller: CurrentKey) -> PredictResponse:
    """Label and class probabilities per item, with the artifact version that produced them. Items
    without profile_id use the plain backbone and get no label (profiles own the heads). All or nothing:
    unknown profiles → 404 listing them, untrained ones → 409 naming their states."""
    began = time.perf_counter()
    ids = list(dict.fromkeys(i.profile_id for i in body.items if i.profile_id is not None))
    resolved = await run_in_threadpool(resolve, runtime, caller, ids) if ids else {}
    rows = [(resolved[i.profile_id][0] if i.profile_id else None, i.text) for i in body.items]
    serving = runtime.serving_if_loaded or await run_in_threadpool(lambda: runtime.serving)
    try:
        predictions = await serving.batcher.submit(rows)
    except QueueFull as exc:
        raise HTTPException(429, f"busy: {exc}", headers={"Retry-After": "1"}) from exc
    runtime.stats.record_request(time.perf_counter() - began)
    return PredictResponse(results=[
        PredictResult(profile_id=item.profile_id, label=p.label, scores=p.scores,
                      artifact_version=resolved[item.profile_id][1] if item.profile_id else None)
        for item, p in zip(body.items, predictions, strict=True)])
