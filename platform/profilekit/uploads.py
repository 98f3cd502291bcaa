"""Parsing uploads row by row. Every bad row is reported (row number and reason); nothing is kept
unless the whole file is good."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from profilekit.errors import ProfilekitError


class UploadError(ProfilekitError):
    def __init__(self, message: str, errors: list[dict]):
        super().__init__(message)
        self.errors = errors  # [{"row": n, "reason": "..."}], rows counted from 1


@dataclass(frozen=True)
class UploadRow:
    text: str
    label: str
    author: str | None = None


MAX_REPORTED = 100
MAX_NAME = 200  # characters of a category or author (their database columns)


def lone_surrogate(text: str) -> bool:
    """JSON can escape half a surrogate pair ("\\ud800"); such a string cannot be UTF-8 encoded."""
    return not text.isascii() and any("\ud800" <= c <= "\udfff" for c in text)


def _storable(**values) -> list[str]:
    """Reasons the store would refuse these strings: PostgreSQL text holds no NUL, UTF-8 no lone
    surrogate (JSON can escape one: "\\ud800"), and categories and authors have a length limit."""
    reasons = []
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            reasons.append(f"{name} contains a NUL character")
        if lone_surrogate(value):
            reasons.append(f"{name} contains a lone surrogate (not valid Unicode)")
        if name != "text" and len(value.strip()) > MAX_NAME:
            reasons.append(f"{name} is longer than {MAX_NAME} characters")
    return reasons


def _rows_from_records(records, *, need_author: bool) -> list[UploadRow]:
    rows, errors = [], []
    for number, record in records:
        if isinstance(record, str):  # a parse error already described
            errors.append({"row": number, "reason": record})
            continue
        if not isinstance(record, dict):
            errors.append({"row": number, "reason": "not an object with text and category"})
            continue
        text = record.get("text")
        label = record.get("category", record.get("label"))
        author = record.get("author")
        reasons = []
        if not isinstance(text, str) or not text.strip():
            reasons.append("text is missing or empty")
        if not isinstance(label, str) or not label.strip():
            reasons.append("category is missing or empty")
        if need_author and (not isinstance(author, str) or not author.strip()):
            reasons.append("author is missing or empty")
        reasons += _storable(text=text, category=label, author=author if need_author else None)
        if reasons:
            errors.append({"row": number, "reason": "; ".join(reasons)})
        else:
            rows.append(UploadRow(text, label.strip(), author.strip() if need_author else None))
    if errors:
        raise UploadError(f"{len(errors)} bad row(s); nothing was stored", errors[:MAX_REPORTED])
    if not rows:
        raise UploadError("the upload holds no rows", [])
    return rows


def parse_rows(body: bytes, content_type: str, *, need_author: bool) -> list[UploadRow]:
    """JSONL (application/x-ndjson, application/jsonl), CSV (text/csv) or JSON (application/json: a list
    of objects, or {"examples": [...]})."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UploadError("the upload is not UTF-8", [{"row": 0, "reason": str(exc)}]) from exc
    if kind in ("application/x-ndjson", "application/jsonl", "application/json-lines", "text/jsonl"):
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    records.append((number, f"not JSON: {exc.msg}"))
        return _rows_from_records(records, need_author=need_author)
    if kind == "text/csv":
        reader = csv.DictReader(io.StringIO(text))
        needed = {"text", "category"} | ({"author"} if need_author else set())
        missing = needed - set(reader.fieldnames or [])
        if missing:
            raise UploadError(f"CSV header lacks {', '.join(sorted(missing))}", [{"row": 1, "reason": "header"}])
        return _rows_from_records(((n, r) for n, r in enumerate(reader, start=2)), need_author=need_author)
    if kind == "application/json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UploadError(f"not JSON: {exc.msg}", [{"row": exc.lineno, "reason": exc.msg}]) from exc
        if isinstance(data, dict):
            data = data.get("examples", data.get("rows"))
        if not isinstance(data, list):
            raise UploadError("JSON must be a list of rows or {\"examples\": [...]}", [])
        return _rows_from_records(enumerate(data, start=1), need_author=need_author)
    raise UploadError(f"unsupported content type {kind!r}: use application/x-ndjson, text/csv or "
                      "application/json", [])


def parse_lamp2(questions: bytes, outputs: bytes | None) -> list[UploadRow]:
    """The original LaMP-2 pair: one author per question (its profile history, plus its own input
    with the gold label when the outputs file is given)."""
    import tempfile
    from pathlib import Path

    from profilekit.datasets import DatasetError, read_lamp2

    with tempfile.TemporaryDirectory() as folder:
        q = Path(folder) / "upload_questions.json"
        q.write_bytes(questions)
        o = None
        if outputs is not None:
            o = Path(folder) / "upload_outputs.json"
            o.write_bytes(outputs)
        try:
            rows = read_lamp2(q, o)
        except (DatasetError, ValueError, KeyError, TypeError) as exc:
            raise UploadError(f"not a LaMP-2 questions/outputs pair: {exc}", [{"row": 0, "reason": str(exc)}]) from exc
    errors = [{"row": n, "reason": "; ".join(reasons)} for n, r in enumerate(rows, start=1)
              if (reasons := _storable(text=r.text, category=r.category, author=r.author))]
    if errors:
        raise UploadError(f"{len(errors)} bad row(s); nothing was stored", errors[:MAX_REPORTED])
    return [UploadRow(r.text, r.category, r.author) for r in rows]
