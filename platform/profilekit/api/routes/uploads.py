"""Onboarding uploads: examples for one profile, and bulk LaMP-style datasets (one profile per author).
Size limits hold while the body streams in (413); a bad file is refused whole with its rows (422)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from profilekit.api.deps import CurrentKey, RuntimeDep, SessionDep
from profilekit.api.routes.profiles import visible_profile
from profilekit.api.schemas import UploadResult
from profilekit.datasets import Row
from profilekit.store import repo
from profilekit.uploads import UploadError, parse_lamp2, parse_rows

router = APIRouter(tags=["uploads"])

UPLOAD_BODY = {"content": {"application/x-ndjson": {"schema": {"type": "string"}},
                           "text/csv": {"schema": {"type": "string"}},
                           "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}


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


def refused(exc: UploadError) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "errors": exc.errors}, status_code=422)


@router.post("/profiles/{profile_id}/examples", response_model=UploadResult, openapi_extra={"requestBody": UPLOAD_BODY})
async def upload_examples(profile_id: str, request: Request, session: SessionDep, caller: CurrentKey,
                          runtime: RuntimeDep):
    """Add examples (rows of text, category) to one profile."""
    profile = visible_profile(session, caller, profile_id)
    body = await read_limited(request, runtime.settings.max_upload_bytes)
    try:
        rows = parse_rows(body, request.headers.get("content-type", ""), need_author=False)
    except UploadError as exc:
        return refused(exc)
    if profile.labels:
        bad = [{"row": i, "reason": f"category {r.label!r} is not in the profile's label set"}
               for i, r in enumerate(rows, start=1) if r.label not in profile.labels]
        if bad:
            return refused(UploadError(f"{len(bad)} bad row(s); nothing was stored", bad[:100]))
    added = repo.add_examples(session, profile=profile, rows=[(r.text, r.label) for r in rows])
    session.commit()
    return UploadResult(profiles=[{"id": profile.id, "external_id": profile.external_id, "added": added}],
                        rows=len(rows))


@router.post("/datasets", response_model=UploadResult, openapi_extra={"requestBody": UPLOAD_BODY})
async def upload_dataset(request: Request, session: SessionDep, caller: CurrentKey, runtime: RuntimeDep,
                         min_rows: int = 1):
    """A LaMP-style dataset of many authors: JSONL/CSV rows of text, category, author, or the LaMP-2
    pair as multipart form files `questions` and `outputs`. Creates or updates one profile per author
    (external_id = author) with at least `min_rows` rows."""
    limit = runtime.settings.max_upload_bytes
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        await read_limited(request, limit)  # enforce the limit while streaming; Starlette keeps the body
        form = await request.form()
        questions, outputs = form.get("questions"), form.get("outputs")
        if questions is None or not hasattr(questions, "read"):
            return JSONResponse({"detail": "multipart upload needs a file field 'questions'",
                                 "errors": [{"row": 0, "reason": "missing field questions"}]}, status_code=422)
        try:
            rows = parse_lamp2(await questions.read(), await outputs.read() if hasattr(outputs, "read") else None)
        except UploadError as exc:
            return refused(exc)
    else:
        body = await read_limited(request, limit)
        try:
            rows = parse_rows(body, content_type, need_author=True)
        except UploadError as exc:
            return refused(exc)
    if min_rows < 1:
        raise HTTPException(422, "min_rows must be at least 1")
    profiles = repo.upsert_author_profiles(session, rows=[Row(r.text, r.label, r.author) for r in rows],
                                           tenant=caller.tenant, min_rows=min_rows)
    session.commit()
    counts = {}
    for r in rows:
        counts[r.author] = counts.get(r.author, 0) + 1
    return UploadResult(profiles=[{"id": p.id, "external_id": p.external_id, "rows": counts[p.external_id]}
                                  for p in profiles], rows=len(rows))
