"""A profile's examples, their checks, and the seeded stratified train/holdout split. Imports no torch."""

from __future__ import annotations

import random
import zlib
from collections import defaultdict
from dataclasses import dataclass

from profilekit.data.rows import Row
from profilekit.errors import TrainingDataError

# The one default of "rows a profile needs", everywhere: uploads and `profilekit onboard` make profiles
# of authors with at least this many rows (in two or more categories), jobs train profiles that have
# them, `profilekit eval` evaluates such authors. 10 leaves a holdout of 3 rows at the default 30 %;
# the committed evaluations use 20 and more (docs/results/).
MIN_ROWS = 10


@dataclass
class Split:
    train: list[int]
    holdout: list[int]


@dataclass
class ProfileData:
    key: str  # the profile's id; also seeds its split, shuffling and noise
    texts: list[str]
    labels: list[str]
    label_set: tuple[str, ...] | None = None  # the classes its head scores; None = labels seen
    split: Split | None = None  # fixed train/holdout rows; None = the seeded stratified split


def profile_seed(seed: int, key: str) -> int:
    """A profile's own seed: its split, shuffling and training noise depend only on (seed, key)."""
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % (2**31)


def untrainable_reason(rows: int, labels: int, *, min_rows: int = MIN_ROWS) -> str | None:
    """Why a profile of `rows` examples with `labels` distinct labels cannot be trained, or None."""
    if rows < min_rows:
        return f"{rows} rows, at least {min_rows} are needed for a train/holdout split (train.min_rows)"
    if labels < 2:
        return "all rows have a single label; a classifier needs at least two"
    return None


def validate_profile(data: ProfileData, *, min_rows: int = MIN_ROWS) -> tuple[str, ...]:
    """Refuse data that cannot be trained on; return the label set the head will score."""
    if len(data.texts) != len(data.labels):
        raise TrainingDataError(f"profile {data.key}: {len(data.texts)} texts but {len(data.labels)} labels")
    distinct = sorted(set(data.labels))
    reason = untrainable_reason(len(data.texts), len(distinct), min_rows=min_rows)
    if reason:
        raise TrainingDataError(f"profile {data.key}: {reason}")
    for row, text in enumerate(data.texts):
        if not isinstance(text, str) or not text.strip():
            raise TrainingDataError(f"profile {data.key}: row {row} has an empty text")
    if data.split is not None:
        rows = data.split.train + data.split.holdout
        if not data.split.train or not data.split.holdout or sorted(rows) != sorted(set(rows)) \
                or not all(0 <= row < len(data.texts) for row in rows):
            raise TrainingDataError(f"profile {data.key}: its fixed split needs distinct rows in range, "
                                    "at least one to train and one to hold out")
    if data.label_set is None:
        return tuple(distinct)
    unknown = [(row, label) for row, label in enumerate(data.labels) if label not in data.label_set]
    if unknown:
        row, label = unknown[0]
        raise TrainingDataError(f"profile {data.key}: row {row} has label {label!r} outside the label set "
                                f"({len(unknown)} such rows)")
    return tuple(data.label_set)


def split_profile(labels: list[str], *, holdout_fraction: float = 0.3, seed: int = 0) -> Split:
    """Stratified split: about `holdout_fraction` of each label held out, at least one row overall."""
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for row, label in enumerate(labels):
        by_label[label].append(row)
    train, holdout = [], []
    for label in sorted(by_label):
        rows = by_label[label]
        rng.shuffle(rows)
        n_hold = round(holdout_fraction * len(rows)) if len(rows) > 1 else 0
        holdout += rows[:n_hold]
        train += rows[n_hold:]
    if not holdout:  # tiny profiles: hold out one row of the most frequent label
        largest = max(sorted(by_label), key=lambda label: len(by_label[label]))
        moved = next(row for row in train if labels[row] == largest)
        train.remove(moved)
        holdout.append(moved)
    return Split(sorted(train), sorted(holdout))


def sample_rows(rows: list[Row], cap: int | None, seed: int) -> list[Row]:
    """A seeded random sample of at most `cap` rows, in their original order (all of them without a cap)."""
    if cap is None or len(rows) <= cap:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), cap))
    return [rows[i] for i in keep]


def profiles_by_author(rows: list[Row], *, min_rows: int = MIN_ROWS, max_rows: int | None = None) -> list[ProfileData]:
    """One ProfileData per author with at least `min_rows` rows, largest first (ties by name); with
    `max_rows`, a seeded sample of at most that many of each author's rows."""
    by_author: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_author[row.author].append(row)
    kept = [(a, r) for a, r in by_author.items() if len(r) >= min_rows]
    kept.sort(key=lambda item: (-len(item[1]), item[0]))
    sampled = [(author, sample_rows(rs, max_rows, zlib.crc32(author.encode()))) for author, rs in kept]
    return [ProfileData(author, [r.text for r in rs], [r.label for r in rs]) for author, rs in sampled]
