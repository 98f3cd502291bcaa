"""LaMP-style data: rows of (text, category, author) in JSONL or CSV, or the original LaMP-2
`*_questions.json` + `*_outputs.json` pair (each question is one user; its profile is their history)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from profilekit.errors import ProfilekitError
from profilekit.training.data import ProfileData


class DatasetError(ProfilekitError):
    """A dataset file cannot be read; the message names the file and row."""


@dataclass(frozen=True)
class Row:
    text: str
    category: str
    author: str


def _check(row: dict, where: str) -> Row:
    missing = [f for f in ("text", "category", "author") if not str(row.get(f) or "").strip()]
    if missing:
        raise DatasetError(f"{where}: missing or empty {', '.join(missing)}")
    return Row(str(row["text"]), str(row["category"]), str(row["author"]).strip())


def read_rows(path: str | Path) -> list[Row]:
    """JSONL or CSV rows with text, category, author; a LaMP-2 questions file (outputs beside it)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    if path.name.endswith("_questions.json"):
        return read_lamp2(path, path.with_name(path.name.replace("_questions.json", "_outputs.json")))
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [_check(row, f"{path} row {i}") for i, row in enumerate(csv.DictReader(handle), start=2)]
    rows = []
    with path.open(encoding="utf-8") as handle:
        for i, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(_check(json.loads(line), f"{path} line {i}"))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path} line {i}: not JSON ({exc.msg})") from exc
    return rows


def read_lamp2(questions: Path, outputs: Path | None = None) -> list[Row]:
    """One author per question id: the profile's history items become its rows. When the outputs file
    exists, each question's own input and gold label join its author's rows too."""
    items = json.loads(Path(questions).read_text(encoding="utf-8"))
    golds = {}
    if outputs is not None and Path(outputs).is_file():
        golds = {str(g["id"]): g["output"] for g in json.loads(Path(outputs).read_text())["golds"]}
    rows = []
    for q, item in enumerate(items):
        author = f"lamp2-{item['id']}"
        for h, entry in enumerate(item.get("profile", [])):
            text = " ".join(part for part in (entry.get("title"), entry.get("text")) if part)
            rows.append(_check({"text": text, "category": entry.get("category"), "author": author},
                               f"{questions} question {q} profile item {h}"))
        if str(item["id"]) in golds:
            text = item["input"].split("article:", 1)[-1].strip()
            rows.append(_check({"text": text, "category": golds[str(item["id"])], "author": author},
                               f"{questions} question {q}"))
    return rows


def profiles_by_author(rows: list[Row], *, min_rows: int = 20) -> list[ProfileData]:
    """One ProfileData per author with at least `min_rows` rows, largest first (ties by name)."""
    by_author: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_author[row.author].append(row)
    kept = [(a, r) for a, r in by_author.items() if len(r) >= min_rows]
    kept.sort(key=lambda item: (-len(item[1]), item[0]))
    return [ProfileData(author, [r.text for r in rs], [r.category for r in rs]) for author, rs in kept]
