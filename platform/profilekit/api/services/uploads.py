"""Uploads: examples for one profile, and LaMP-style datasets of many authors (one profile each).
Parsing and inserts run in a worker thread (the routes call these through run_in_threadpool), with a
session of their own; a bad file is refused whole with its rows, and nothing is stored."""

from __future__ import annotations

from collections import Counter

from profilekit.api.auth import Caller
from profilekit.api.schemas import UploadResult
from profilekit.api.services import retry_lost_race
from profilekit.api.services.profiles import visible_profile
from profilekit.data import MIN_ROWS, DataError, parse_lamp, parse_rows
from profilekit.store import repo


def add_examples(sessions, caller: Caller, profile_id: str, body: bytes, content_type: str) -> UploadResult:
    """Rows of text and category for one profile; labels outside its label set (if it has one) are refused."""
    with sessions() as session:
        profile = visible_profile(session, caller, profile_id)
        rows = parse_rows(body, content_type, need_author=False)
        if profile.labels:
            bad = [{"row": i, "reason": f"category {r.label!r} is not in the profile's label set"}
                   for i, r in enumerate(rows, start=1) if r.label not in profile.labels]
            if bad:
                raise DataError(f"{len(bad)} bad row(s), none kept; row {bad[0]['row']}: {bad[0]['reason']}",
                                bad[:100])
        added = repo.add_examples(session, profile=profile, rows=[(r.text, r.label) for r in rows])
        session.commit()
        return UploadResult(profiles=[{"id": profile.id, "external_id": profile.external_id, "added": added}],
                            rows=len(rows))


def form_files(body: bytes, content_type: str) -> dict[str, bytes]:
    """The file fields of a multipart/form-data body, parsed here (in a worker thread) rather than by
    `request.form()` on the event loop, so a large upload never holds up predictions."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        raise DataError("multipart upload could not be parsed", [{"row": 0, "reason": "not multipart/form-data"}])
    files = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is not None:
            files[name] = part.get_payload(decode=True) or b""
    return files


def add_dataset(sessions, caller: Caller, *, body: bytes | None = None, content_type: str = "",
                questions: bytes | None = None, outputs: bytes | None = None, min_rows: int = MIN_ROWS) -> UploadResult:
    """JSONL/CSV/JSON rows with authors, or a LaMP questions (and outputs) file of any classification task
    (data/lamp.py; each question is a user, its profile items its rows): one profile per author
    (external_id = author) with at least `min_rows` rows, created or extended."""
    rows = parse_lamp(questions, outputs).rows if questions is not None else \
        parse_rows(body, content_type, need_author=True)
    counts = Counter(r.author for r in rows)

    def write(session):
        profiles = repo.upsert_author_profiles(session, rows=rows, tenant=caller.tenant, min_rows=min_rows)
        session.commit()
        return profiles

    with sessions() as session:
        profiles = retry_lost_race(session, write)  # two uploads naming the same new author at once
        return UploadResult(profiles=[{"id": p.id, "external_id": p.external_id, "rows": counts[p.external_id]}
                                      for p in profiles], rows=len(rows), skipped_authors=len(counts) - len(profiles))
