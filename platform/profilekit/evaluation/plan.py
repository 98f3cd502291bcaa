"""What an evaluation runs: its settings, the profiles it scores, the authors that build its warm pool,
and the methods it compares (each a registered method on a random or warm pool, or `global`)."""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profilekit.data import MIN_ROWS, ProfileData, Row, profile_seed, sample_rows, split_profile
from profilekit.errors import ProfilekitError
from profilekit.methods.registry import get_method, method_names


class EvalError(ProfilekitError):
    """An evaluation cannot start or continue; the message says which setting or file is wrong."""


@dataclass(frozen=True)
class EvalMethod:
    name: str  # as it appears in results.csv
    method: str | None  # the registered method it trains; None for `global`
    # random | warm | random_head (random adapters with the warm pool's head) | warm_fit, random_fit (those
    # adapters with the warm head refit on rows through them, as the method composes them: refit_head) | tuned
    # (the warm adapters and head trained on as masked profiles use them: tune_pool)
    pool: str | None = None
    preset: dict = field(default_factory=dict)  # config fields fixed by this evaluation name


def _registered() -> list[EvalMethod]:
    """Every registered method under its own name, on the random pool when it uses a pool: a method added
    to methods/ can be evaluated without a line here."""
    return [EvalMethod(name, name, "random" if get_method(name).uses_pool else None) for name in method_names()]


DELTA_PRESET = {"head": "shared", "prior": True, "layer_norm": False, "head_delta_rank": 1, "stored_dtype": "int8"}
# Variants on warm pools (built by the evaluation, cross-fitted), each a registered method with a preset.
VARIANTS = [
    # The paper's "x_peft warm": a pool trained on other authors, and the head those adapters were
    # trained against, shared; a profile learns only its masks and LayerNorm.
    EvalMethod("xpeft_soft_warm", "xpeft_soft", "warm", {"head": "shared", "prior": False}),
    EvalMethod("xpeft_hard_warm", "xpeft_hard", "warm", {"head": "shared", "prior": False}),
    # The same on random adapters with the warm pool's head: what the warm adapters add in the paper's setting.
    EvalMethod("xpeft_hard_random_shared", "xpeft_hard", "random_head", {"head": "shared", "prior": False}),
    # Masks alone (no LayerNorm, no prior) over every label of the shared head: whatever a profile gains here, its
    # selection of adapters carries; on warm adapters, and on random ones with the same head (the control).
    EvalMethod("xpeft_hard_warm_masks", "xpeft_hard", "warm", {"head": "shared", "prior": False, "layer_norm": False}),
    EvalMethod("xpeft_hard_random_masks", "xpeft_hard", "random_head",
               {"head": "shared", "prior": False, "layer_norm": False}),
    # The byte-sized profile: masks, LayerNorm and a label prior over its own labels on the shared head.
    EvalMethod("xpeft_hard_warm_prior", "xpeft_hard", "warm", {"head": "shared", "prior": True}),
    EvalMethod("xpeft_hard_warm_prior_bare", "xpeft_hard", "warm", {"head": "shared", "prior": True,
                                                                    "layer_norm": False}),
    # The ≤ 1 KB candidate: the bare profile plus a rank-1 delta of the shared head, stored in float16 and
    # the delta's d-sized row in int8 (595 + 4·C bytes on MiniLM with N=100).
    EvalMethod("xpeft_hard_warm_delta", "xpeft_hard", "warm", DELTA_PRESET),
    # The same on random adapters with the warm pool's head: what the warm adapters add.
    EvalMethod("xpeft_hard_random_prior", "xpeft_hard", "random_head", {"head": "shared", "prior": True}),
    EvalMethod("xpeft_hard_random_delta", "xpeft_hard", "random_head", DELTA_PRESET),
    # The delta profile with masks started on the adapters of the most similar pool authors (by their label
    # counts), and the same selection of random adapters (random adapters have no authors: the control).
    EvalMethod("xpeft_hard_warm_near", "xpeft_hard", "warm", DELTA_PRESET | {"mask_init": "nearest"}),
    EvalMethod("xpeft_hard_random_near", "xpeft_hard", "random_head", DELTA_PRESET | {"mask_init": "nearest"}),
    # The paper's profile and the delta profile with the shared head refit on rows through the adapters under
    # random masks of the method's k (and LayerNorm): on warm adapters, and on random ones (the control).
    EvalMethod("xpeft_hard_warm_fit", "xpeft_hard", "warm_fit", {"head": "shared", "prior": False}),
    EvalMethod("xpeft_hard_random_fit", "xpeft_hard", "random_fit", {"head": "shared", "prior": False}),
    EvalMethod("xpeft_hard_warm_fit_delta", "xpeft_hard", "warm_fit", DELTA_PRESET),
    EvalMethod("xpeft_hard_random_fit_delta", "xpeft_hard", "random_fit", DELTA_PRESET),
    # The delta profile on the warm pool tuned further as masked profiles use it (adapters and head together).
    EvalMethod("xpeft_hard_tuned_delta", "xpeft_hard", "tuned", DELTA_PRESET),
    # The warm pool's adapters with the profile's own head (the pool's head is not used).
    EvalMethod("xpeft_hard_warm_own_head", "xpeft_hard", "warm", {"head": "profile", "head_init": "random"}),
    # Own head started from the warm pool's shared head and the profile's label frequencies: task model
    # plus personal delta; with random adapters, and with no adapters at all.
    EvalMethod("xpeft_hard_warm_init", "xpeft_hard", "warm", {"head": "profile", "head_init": "shared"}),
    EvalMethod("xpeft_hard_random_init", "xpeft_hard", "random_head", {"head": "profile", "head_init": "shared"}),
    EvalMethod("head_only_warm_init", "head_only", "warm", {"head_init": "shared"}),
]
# One non-personalised model: head_only trained on the training rows of all profiles together.
METHODS = {m.name: m for m in [*_registered(), *VARIANTS, EvalMethod("global", None)]}
# the platform's defaults (xpeft_hard on a random and on a warm pool), an own head on the warm pool, and global
DEFAULT_METHODS = ("head_only", "xpeft_hard", "xpeft_hard_warm_delta", "xpeft_hard_warm_init", "global")


MIN_PROFILE_ROWS = 3  # the fewest rows an evaluated profile trains on (a stratified holdout keeps one or more)

# Settings added after runs were recorded, with the value those runs had: left out of a fingerprint at that
# value, so the recorded folders and pools still resume.
LATER_SETTINGS = {"pool_adapter_prior": False, "pool_shared_down": False}


def _recorded(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in LATER_SETTINGS or LATER_SETTINGS[k] != v}


@dataclass(frozen=True)
class EvalConfig:
    data: str  # LaMP-style file (JSONL, CSV or a LaMP questions file)
    methods: tuple[str, ...] = DEFAULT_METHODS
    min_rows: int = MIN_ROWS  # authors with at least this many rows are the evaluated profiles
    max_rows: int | None = None  # a seeded random sample of at most this many rows per author
    pool_size: int = 100  # N of the random and the warm pools
    warm_min_rows: int = 3  # authors with at least this many rows (two categories) can build a warm pool
    pool_folds: int = 5  # cross-fitting: the warm pool of a fold's profiles is built without their rows
    pool_data: str | None = None  # build one warm pool from this file's authors instead (no cross-fitting)
    pool_seed: int = 0  # seeds the folds and the warm pools (shared by runs with other --seed)
    pool_adapter_prior: bool = False  # warm adapters train beside a per-author label prior (build_warm_pool)
    pool_shared_down: bool = False  # warm adapters share one fixed down projection (build_warm_pool)
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
        if self.min_rows < MIN_PROFILE_ROWS:
            raise EvalError(f"--min-rows must be at least {MIN_PROFILE_ROWS} (each profile trains on some rows "
                            f"and is scored on others), got {self.min_rows}")
        if self.max_rows is not None and self.max_rows < MIN_PROFILE_ROWS:
            raise EvalError(f"--max-rows must be at least {MIN_PROFILE_ROWS}, got {self.max_rows}")
        if self.pool_folds < 2 and self.pool_data is None:
            raise EvalError(f"--pool-folds must be at least 2 (got {self.pool_folds}), or give --pool-data")

    def fingerprint(self) -> dict:
        """What must match for a run to resume into the same folder (methods may be added)."""
        return _recorded({k: v for k, v in asdict(self).items() if k != "methods"})

    def pool_fingerprint(self) -> dict:
        """What the warm pools depend on (not the evaluation's own seed or methods)."""
        keys = ("data", "min_rows", "max_rows", "pool_size", "warm_min_rows", "pool_folds", "pool_data",
                "pool_seed", "pool_adapter_prior", "pool_shared_down", "epochs", "batch_size", "profiles_per_step")
        return _recorded({k: getattr(self, k) for k in keys})


@dataclass
class Plan:
    profiles: list[ProfileData]  # evaluated, each with its fixed split
    skipped: dict[str, str]  # author → why it is not evaluated (e.g. a single category)
    folds: dict[str, int]  # evaluated author → the warm pool it is evaluated on
    builders: list[list[ProfileData]]  # per warm pool: the authors that build it (never its evaluated ones)
    labels: tuple[str, ...]  # every category of the data (and of the pool data)
    left_out: list[str] = field(default_factory=list)  # pool-data authors not used because they are evaluated


def _by_author(rows: list[Row]) -> dict[str, list[Row]]:
    by_author: dict[str, list[Row]] = {}
    for row in rows:
        by_author.setdefault(row.author, []).append(row)
    return by_author


def _builder(author: str, rows: list[Row], config: EvalConfig) -> ProfileData:
    sampled = sample_rows(rows, config.max_rows, config.pool_seed * 7919 + zlib.crc32(author.encode()))
    return ProfileData(author, [r.text for r in sampled], [r.label for r in sampled])


def _largest(candidates: dict[str, list[Row]], config: EvalConfig) -> list[ProfileData]:
    """The pool_size authors with the most rows (ties by name), each with ≥ warm_min_rows rows in two
    or more categories: a deployment builds its pool from its users with the most data."""
    usable = [a for a, rs in candidates.items()
              if len(rs) >= config.warm_min_rows and len({r.label for r in rs}) >= 2]
    usable.sort(key=lambda a: (-len(candidates[a]), a))
    return [_builder(a, candidates[a], config) for a in usable[:config.pool_size]]


def make_plan(rows: list[Row], config: EvalConfig, pool_rows: list[Row] | None = None) -> Plan:
    """Evaluated profiles: authors with ≥ min_rows rows and at least two categories (one category
    leaves nothing to classify). Warm pools, cross-fitted: the evaluated authors are dealt into
    `pool_folds` folds (seeded by pool_seed), and the pool of a fold is built from the largest other
    authors — evaluated ones of other folds included, its own never. With `pool_rows` (another
    file's authors) one pool built from them serves every evaluated author; an author of both files is
    left out of the pool (its rows would reach the head that scores its holdout) and named in `left_out`."""
    by_author = _by_author(rows)
    order = sorted(by_author, key=lambda a: (-len(by_author[a]), a))
    profiles, skipped = [], {}
    for author in order:
        author_rows = by_author[author]
        categories = {r.label for r in author_rows}
        if len(author_rows) < config.min_rows:
            continue
        if len(categories) < 2:
            skipped[author] = f"all {len(author_rows)} rows are {next(iter(categories))}"
            continue
        sampled = sample_rows(author_rows, config.max_rows, config.seed * 7919 + zlib.crc32(author.encode()))
        labels = [r.label for r in sampled]
        if len(set(labels)) < 2:  # the seeded sample of --max-rows rows drew one category only
            skipped[author] = f"its {len(sampled)} sampled rows (--max-rows) are all {labels[0]}"
            continue
        split = split_profile(labels, holdout_fraction=0.3, seed=profile_seed(config.seed, author))
        profiles.append(ProfileData(author, [r.text for r in sampled], labels, split=split))
    if not profiles:
        raise EvalError(f"no author of {config.data} has at least {config.min_rows} rows in two or more "
                        "categories")
    labels = {r.label for r in rows}
    left_out = []
    if pool_rows is not None:
        folds = {p.key: 0 for p in profiles}
        candidates = _by_author(pool_rows)
        left_out = sorted(set(candidates) & set(folds))
        builders = [_largest({a: rs for a, rs in candidates.items() if a not in folds}, config)]
        labels |= {r.label for r in pool_rows}
    else:
        keys = sorted(p.key for p in profiles)
        random.Random(config.pool_seed).shuffle(keys)
        folds = {key: i % config.pool_folds for i, key in enumerate(keys)}
        builders = [_largest({a: rs for a, rs in by_author.items() if folds.get(a) != fold}, config)
                    for fold in range(config.pool_folds)]
    return Plan(profiles, skipped, folds, builders, tuple(sorted(labels)), left_out)


def write_plan(plan: Plan, path: Path) -> None:
    path.write_text(json.dumps({
        "profiles": {p.key: {"rows": len(p.texts), "n_train": len(p.split.train), "n_holdout": len(p.split.holdout),
                             "pool": plan.folds[p.key]} for p in plan.profiles},
        "skipped": plan.skipped,
        "warm_pool_builders": [{b.key: len(b.texts) for b in builders} for builders in plan.builders],
        **({"left_out_of_the_pool": plan.left_out} if plan.left_out else {}),
        "labels": list(plan.labels),
    }, indent=1))
