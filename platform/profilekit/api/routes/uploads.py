"""Onboarding uploads: examples for one profile, and bulk LaMP-style datasets (one profile per author).
Size limits hold while the body streams in (413); a bad file is refused whole with its rows (422);
parsing and inserts run off the event loop."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from profilekit.api.deps import CurrentKey, RuntimeDep
from profilekit.api.openapi import errors
from profilekit.api.schemas import UploadResult
from profilekit.api.services import uploads as service
from profilekit.data import MIN_ROWS, DataError

router = APIRouter(tags=["uploads"])


def row_bodies(rows: list[dict]) -> dict:
    """An upload's body in each accepted format (JSONL, CSV, a JSON list), each with `rows` as its example."""
    header = list(rows[0])
    csv = ",".join(header) + "\n" + "".join(",".join(row[h] for h in header) + "\n" for row in rows)
    return {"application/x-ndjson": {"schema": {"type": "string"}, "example": "\n".join(json.dumps(r) for r in rows)},
            "text/csv": {"schema": {"type": "string"}, "example": csv},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}, "example": rows}}


ROWS = [{"text": "Senate passes the budget", "category": "POLITICS"},
        {"text": "Lakers win again", "category": "SPORTS"}]
LAMP_PAIR = {"schema": {"type": "object", "required": ["questions"], "properties": {
    "questions": {"type": "string", "format": "binary", "description": "LaMP *_questions.json"},
    "outputs": {"type": "string", "format": "binary", "description": "LaMP *_outputs.json"}}},
    "example": {"questions": "@LaMP_22_dev_questions.json", "outputs": "@LaMP_22_dev_outputs.json"}}
UPLOAD_BODY = {"content": row_bodies(ROWS)}
DATASET_BODY = {"content": row_bodies([row | {"author": "Ann Writer"} for row in ROWS])
                | {"multipart/form-data": LAMP_PAIR}}


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it grows past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"upload exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette serves request.form() from this cached body
    return body


@router.post("/profiles/{profile_id}/examples", response_model=UploadResult,
             openapi_extra={"requestBody": UPLOAD_BODY}, responses=errors(404, 409, 413, 422))
async def upload_examples(profile_id: str, request: Request, caller: CurrentKey, runtime: RuntimeDep):
    """Add examples (rows of text, category) to one profile."""
    body = await read_limited(request, runtime.settings.max_upload_bytes)
    return await run_in_threadpool(service.add_examples, runtime.sessions, caller, profile_id, body,
                                   request.headers.get("content-type", ""))


@router.post("/datasets", response_model=UploadResult, openapi_extra={"requestBody": DATASET_BODY},
             responses=errors(409, 413, 422))
async def upload_dataset(request: Request, caller: CurrentKey, runtime: RuntimeDep,
                         min_rows: int = Query(MIN_ROWS, ge=1, le=100_000)):
    """A LaMP-style dataset of many authors: JSONL/CSV rows of text, category, author, or the LaMP-2
    pair as multipart form files `questions` and `outputs`. Creates or updates one profile per author
    (external_id = author) with at least `min_rows` rows; `skipped_authors` counts the others."""
    body = await read_limited(request, runtime.settings.max_upload_bytes)
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return await run_in_threadpool(service.add_dataset, runtime.sessions, caller, body=body,
                                       content_type=content_type, min_rows=min_rows)
    files = await run_in_threadpool(service.form_files, body, content_type)
    if "questions" not in files:
        raise DataError("multipart upload needs a file field 'questions'",
                        [{"row": 0, "reason": "missing field questions"}])
    return await run_in_threadpool(service.add_dataset, runtime.sessions, caller, questions=files["questions"],
                                   outputs=files.get("outputs"), min_rows=min_rows)
