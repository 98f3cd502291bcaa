"""Predictions for rows of any profiles, merged across requests by the dynamic batcher."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from profilekit.api.app import FastJSONResponse
from profilekit.api.deps import CurrentKey, RuntimeDep
from profilekit.api.openapi import error, errors
from profilekit.api.schemas import PROFILE_ID, PredictRequest, PredictResponse
from profilekit.api.services.predict import resolve
from profilekit.serving import DeadlineExceeded, QueueFull

router = APIRouter(tags=["predict"])
UNKNOWN = {"detail": {"message": "unknown profile nope-1", "unknown_profile_ids": ["nope-1"]}}
UNTRAINED = {"detail": {"message": f"profiles without a trained artifact: {PROFILE_ID} (queued)",
                        "profiles": [{"id": PROFILE_ID, "state": "queued"}]}}


@router.post("/predict", response_model=PredictResponse, responses=errors(429, 503, 504) | {
    404: error(404, "Unknown profiles, every one listed", UNKNOWN),
    409: error(409, "Profiles without a trained artifact yet, with their states", UNTRAINED)})
async def predict(body: PredictRequest, request: Request, runtime: RuntimeDep, caller: CurrentKey) -> FastJSONResponse:
    """Label and class probabilities per item, with the artifact version that produced them. Items
    without profile_id use the plain backbone and get no label (profiles own the heads). All or nothing:
    unknown profiles → 404 listing them, untrained ones → 409 naming their states. 429 (with Retry-After)
    when the key's rows/s limit is spent (api/limits.py), or when the rows would wait longer than the
    server's max_queue_seconds or the request's `timeout_ms`;
    504 when `timeout_ms` passed while they waited (they are not computed, nor when the client leaves)."""
    began = time.perf_counter()
    runtime.rate_limit.take(caller.key_id, len(body.items), caller.rows_per_second)  # else 429
    timeout = body.timeout_ms / 1000 if body.timeout_ms is not None else None
    ids = list(dict.fromkeys(i.profile_id for i in body.items if i.profile_id is not None))
    resolved = await run_in_threadpool(resolve, runtime, caller, ids) if ids else {}
    rows = [(resolved[i.profile_id][0] if i.profile_id else None, i.text) for i in body.items]
    serving = runtime.serving_if_loaded or await run_in_threadpool(lambda: runtime.serving)
    if timeout is not None:
        timeout -= time.perf_counter() - began
    try:
        work = serving.batcher.submit(rows, timeout=timeout, tenant=caller.tenant)  # tenants share forwards fairly
        predictions = await until_disconnected(request, work)
    except QueueFull as exc:
        raise HTTPException(429, f"busy: {exc}", headers={"Retry-After": str(exc.retry_after)}) from exc
    except DeadlineExceeded as exc:
        raise HTTPException(504, f"timeout_ms={body.timeout_ms} passed: {exc}") from exc
    runtime.stats.record_request(time.perf_counter() - began)
    # the PredictResponse shape, built as plain dicts and rendered by orjson (no second validation)
    return FastJSONResponse({"results": [
        {"profile_id": item.profile_id, "label": p.label, "scores": p.scores,
         "artifact_version": resolved[item.profile_id][1] if item.profile_id else None}
        for item, p in zip(body.items, predictions, strict=True)]})


async def until_disconnected(request: Request, work):
    """`work`'s result; when the client disconnects first, `work` is cancelled (the batcher then drops its
    rows unseen) and the request ends."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():  # nobody reads this answer; 499 (client closed request) is what the metrics count
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise HTTPException(499, "the client disconnected before its rows were computed")
    return task.result()


async def wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
