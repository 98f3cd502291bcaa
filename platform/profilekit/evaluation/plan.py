"""What an evaluation runs: its settings, the profiles it scores, the authors that build its warm pool,
and the methods it compares (each a registered method on a random or warm pool, or `global`)."""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profilekit.data import ProfileData, Row, profile_seed, split_profile
from profilekit.errors import ProfilekitError


class EvalError(ProfilekitError):
    """An evaluation cannot start or continue; the message says which setting or file is wrong."""


@dataclass(frozen=True)
class EvalMethod:
    name: str  # as it appears in results.csv
    method: str | None  # the registered method it trains; None for `global`
    pool: str | None = None  # random | warm, for pool methods
    preset: dict = field(default_factory=dict)  # config fields fixed by this evaluation name


METHODS = {m.name: m for m in [
    EvalMethod("head_only", "head_only"),
    EvalMethod("single_adapter", "single_adapter"),
    EvalMethod("xpeft_soft", "xpeft_soft", "random"),
    EvalMethod("xpeft_hard", "xpeft_hard", "random"),
    # The paper's "x_peft warm": a pool trained on other authors, and the head those adapters were
    # trained against, shared; a profile learns only its masks and LayerNorm.
    EvalMethod("xpeft_soft_warm", "xpeft_soft", "warm", {"head": "shared"}),
    EvalMethod("xpeft_hard_warm", "xpeft_hard", "warm", {"head": "shared"}),
    # The warm pool's adapters with the profile's own head (the pool's head is not used).
    EvalMethod("xpeft_hard_warm_own_head", "xpeft_hard", "warm", {"head": "profile"}),
    EvalMethod("aot_fc", "aot_fc"),
    EvalMethod("aot_kron", "aot_kron"),
    EvalMethod("dept", "dept"),
    EvalMethod("dpt", "dpt"),
    EvalMethod("prompt_tuning", "prompt_tuning"),
    # One non-personalised model: head_only trained on the training rows of all profiles together.
    EvalMethod("global", None),
]}
DEFAULT_METHODS = ("head_only", "single_adapter", "xpeft_soft", "xpeft_hard", "xpeft_soft_warm",
                   "xpeft_hard_warm", "global")


@dataclass(frozen=True)
class EvalConfig:
    data: str  # LaMP-style file (JSONL, CSV or a LaMP-2 questions file)
    methods: tuple[str, ...] = DEFAULT_METHODS
    min_rows: int = 20  # authors with at least this many rows are the evaluated profiles
    max_rows: int | None = None  # a seeded random sample of at most this many rows per author
    pool_size: int = 100  # N of the random and the warm pool
    warm_min_rows: int = 3  # authors below min_rows with at least this many rows can build the warm pool
    epochs: int = 10
    batch_size: int = 16  # rows of one profile per step
    profiles_per_step: int = 16  # profiles trained together (a resumable unit)
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # {eval method: {config field: value}}

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise EvalError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
        if not self.methods:
            raise EvalError("no methods to evaluate")
        bad = [m for m in self.overrides if m not in METHODS]
        if bad:
            raise EvalError(f"--set names unknown methods {bad}")

    def fingerprint(self) -> dict:
        """What must match for a run to resume into the same folder (methods may be added)."""
        return {k: v for k, v in asdict(self).items() if k != "methods"}


@dataclass
class Plan:
    profiles: list[ProfileData]  # evaluated, each with its fixed split
    skipped: dict[str, str]  # author → why it is not evaluated (e.g. a single category)
    builders: list[ProfileData]  # authors that build the warm pool (disjoint from `profiles`)
    labels: tuple[str, ...]  # every category of the dataset


def _sample(rows: list[Row], cap: int | None, seed: int) -> list[Row]:
    if cap is None or len(rows) <= cap:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), cap))
    return [rows[i] for i in keep]


def make_plan(rows: list[Row], config: EvalConfig) -> Plan:
    """Evaluated profiles: authors with ≥ min_rows rows and at least two categories (one category
    leaves nothing to classify). Warm-pool builders: the next largest authors (≥ warm_min_rows rows,
    two categories), up to pool_size of them, never an evaluated author."""
    by_author: dict[str, list[Row]] = {}
    for row in rows:
        by_author.setdefault(row.author, []).append(row)
    order = sorted(by_author, key=lambda a: (-len(by_author[a]), a))
    profiles, skipped, builders = [], {}, []
    for author in order:
        author_rows = by_author[author]
        categories = {r.label for r in author_rows}
        if len(author_rows) >= config.min_rows:
            if len(categories) < 2:
                skipped[author] = f"all {len(author_rows)} rows are {next(iter(categories))}"
                continue
            sampled = _sample(author_rows, config.max_rows, config.seed * 7919 + zlib.crc32(author.encode()))
            labels = [r.label for r in sampled]
            split = split_profile(labels, holdout_fraction=0.3, seed=profile_seed(config.seed, author))
            profiles.append(ProfileData(author, [r.text for r in sampled], labels, split=split))
        elif len(author_rows) >= config.warm_min_rows and len(categories) >= 2 \
                and len(builders) < config.pool_size:
            builders.append(ProfileData(author, [r.text for r in author_rows], [r.label for r in author_rows]))
    if not profiles:
        raise EvalError(f"no author of {config.data} has at least {config.min_rows} rows in two or more "
                        "categories")
    return Plan(profiles, skipped, builders, tuple(sorted({r.label for r in rows})))


def write_plan(plan: Plan, path: Path) -> None:
    path.write_text(json.dumps({
        "profiles": {p.key: {"rows": len(p.texts), "n_train": len(p.split.train),
                             "n_holdout": len(p.split.holdout)} for p in plan.profiles},
        "skipped": plan.skipped,
        "warm_pool_builders": {b.key: len(b.texts) for b in plan.builders},
        "labels": list(plan.labels),
    }, indent=1))
