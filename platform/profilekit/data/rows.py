"""One row type for rows from any source, and its readers: JSONL, CSV and JSON lists from bytes (uploads)
or files (the command line); LaMP's `*_questions.json` files are read by data/lamp.py into these rows.

Every bad row is reported with its number and reason (rows counted from 1; a CSV's header is row 1);
nothing is returned unless every row is good. Imports no torch.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from profilekit.errors import ProfilekitError

MAX_REPORTED = 100  # bad rows listed in one error
MAX_NAME = 200  # characters of a label or author (their database columns)
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines", "text/jsonl")


class DataError(ProfilekitError):
    """Rows cannot be read. `errors` lists each bad row: {"row": n, "reason": "..."}."""

    def __init__(self, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.errors = errors or []


@dataclass(frozen=True)
class Row:
    text: str
    label: str
    author: str | None = None  # the profile a dataset row belongs to; None for one profile's examples


def lone_surrogate(text: str) -> bool:
    """JSON can escape half a surrogate pair ("\\ud800"); such a string cannot be UTF-8 encoded."""
    return not text.isascii() and any("\ud800" <= c <= "\udfff" for c in text)


def unstorable(**values) -> list[str]:
    """Reasons the store would refuse these strings: PostgreSQL text holds no NUL, UTF-8 no lone
    surrogate, and labels and authors have a length limit."""
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


def rows_from_records(records: Iterable[tuple[int, object]], *, need_author: bool) -> list[Row]:
    """(row number, record) pairs → rows. A record is a dict with text, category (or label) and, when
    `need_author`, author; a string record is a parse error already described."""
    rows, errors = [], []
    for number, record in records:
        if isinstance(record, str):
            errors.append({"row": number, "reason": record})
            continue
        if not isinstance(record, dict):
            errors.append({"row": number, "reason": "not an object with text and category"})
            continue
        text, author = record.get("text"), record.get("author")
        label = record.get("category", record.get("label"))
        reasons = []
        if not isinstance(text, str) or not text.strip():
            reasons.append("text is missing or empty")
        if not isinstance(label, str) or not label.strip():
            reasons.append("category is missing or empty")
        if need_author and (not isinstance(author, str) or not author.strip()):
            reasons.append("author is missing or empty")
        reasons += unstorable(text=text, category=label, author=author if need_author else None)
        if reasons:
            errors.append({"row": number, "reason": "; ".join(reasons)})
        else:
            rows.append(Row(text, label.strip(), author.strip() if need_author else None))
    if errors:
        first = errors[0]
        raise DataError(f"{len(errors)} bad row(s), none kept; row {first['row']}: {first['reason']}",
                        errors[:MAX_REPORTED])
    if not rows:
        raise DataError("no rows", [])
    return rows


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError("not UTF-8", [{"row": 0, "reason": str(exc)}]) from exc


def parse_rows(body: bytes, content_type: str, *, need_author: bool) -> list[Row]:
    """JSONL (application/x-ndjson, application/jsonl), CSV (text/csv) or JSON (application/json: a list
    of objects, or {"examples": [...]})."""
    kind = content_type.split(";")[0].strip().lower()
    text = _decode(body)
    if kind in JSONL_TYPES:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    records.append((number, f"not JSON: {exc.msg}"))
        return rows_from_records(records, need_author=need_author)
    if kind == "text/csv":
        reader = csv.DictReader(io.StringIO(text))
        fields = set(reader.fieldnames or [])
        missing = ({"text"} - fields) | ({"category"} - fields if "label" not in fields else set()) \
            | ({"author"} - fields if need_author else set())
        if missing:
            raise DataError(f"CSV header lacks {', '.join(sorted(missing))}", [{"row": 1, "reason": "header"}])
        return rows_from_records(((n, r) for n, r in enumerate(reader, start=2)), need_author=need_author)
    if kind == "application/json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"not JSON: {exc.msg}", [{"row": exc.lineno, "reason": exc.msg}]) from exc
        if isinstance(data, dict):
            data = data.get("examples", data.get("rows"))
        if not isinstance(data, list):
            raise DataError('JSON must be a list of rows or {"examples": [...]}', [])
        return rows_from_records(enumerate(data, start=1), need_author=need_author)
    raise DataError(f"unsupported content type {kind!r}: use application/x-ndjson, text/csv or application/json")


def read_rows(path: str | Path) -> list[Row]:
    """A dataset file: JSONL or CSV rows of text, category and author, or a LaMP `*_questions.json`
    (its users' profile items; data/lamp.py). Errors name the file."""
    path = Path(path)
    if path.name.endswith("_questions.json"):
        from profilekit.data.lamp import read_lamp

        return read_lamp(path).rows
    if not path.is_file():
        raise DataError(f"dataset file {path} does not exist")
    try:
        kind = "text/csv" if path.suffix == ".csv" else "application/json" if path.suffix == ".json" \
            else "application/x-ndjson"
        return parse_rows(path.read_bytes(), kind, need_author=True)
    except DataError as exc:
        raise DataError(f"{path}: {exc}", exc.errors) from exc
