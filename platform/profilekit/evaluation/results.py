"""results.csv: one row per (profile, method), appended as groups finish and read back to resume."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from profilekit.evaluation.plan import EvalError

COLUMNS = ["profile", "method", "accuracy", "macro_f1", "train_seconds", "trainable_params", "stored_bytes",
           "n_train", "n_holdout"]


def read_results(path: Path) -> list[dict]:
    """Rows of results.csv; a last line cut off by a kill (no newline) is dropped from the file."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        path.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    if lines and lines[0].split(",") != COLUMNS:
        raise EvalError(f"{path} is not a results file of this evaluation (header {lines[0]!r})")
    return list(csv.DictReader(lines))


def append_results(path: Path, records: list[dict]) -> None:
    new = not path.is_file() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerows(records)
        handle.flush()
        os.fsync(handle.fileno())


PREDICTION_COLUMNS = ["profile", "method", "question", "predicted", "gold"]


def append_predictions(path: Path, records: list[dict]) -> None:
    """LaMP answers, one line per (profile, method, question), appended with the results they belong to."""
    new = not path.is_file() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PREDICTION_COLUMNS, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerows(records)


def read_predictions(path: Path) -> list[dict]:
    """Rows of predictions.csv ([] when there is none); a line cut by a kill is left out."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]
    return list(csv.DictReader(lines))
