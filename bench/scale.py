"""`profilekit bench`'s scale run: how many profiles one machine holds and serves, and what training costs
as the pool grows. Printed `name: value` lines:

1. Registration (scale_store.py): in a fresh database made by the project's migrations (a temporary
   SQLite file unless --scale-database-url), X-PEFT hard-mask profiles are inserted in transactions of
   --scale-chunk rows, exactly as a finished training job stores them, until --scale-profiles, the
   time budget, the RSS limit or the free-disk floor. Masks are random, not trained. Profiles use a
   warm-like pool's shared head by default (--scale-head), so they store no head of their own.
   max_profiles_profilekit (counted in the database), register_seconds_per_1000_{first,last}_chunk,
   stored_bytes_per_profile, database_mb, rss_mb_after_registration.
2. Serving: batches of --scale-rows rows, each row a random profile, random news texts. Every batch
   looks its profiles up in the database and takes their states from an ArtifactCache (loading the
   misses: `serving.load_states`), then runs one Engine forward (`Engine.predict`). Two cases,
   alternated with the plain backbone (tokenize + forward) on the same texts: "1k", the first
   --scale-hot profiles, all in their cache; "max", random profiles among all registered, through a
   cache of --scale-cache-entries (filled with random profiles first), so nearly all are misses.
   mixed_vs_backbone_ratio_{1k,max} (median over batches of backbone seconds ÷ served seconds, the
   backbone timed before and after each), batch_latency_ms_{p50,p99}_{1k,max},
   p99_latency_ratio_max_vs_1k, cache_misses_per_batch_max, rss_mb_serving.
3. Cold profile to first prediction: for random profiles in no cache, database read → engine.load →
   compose → forward of one row → label: cold_first_prediction_ms_{p50,p99}, cold_load_ms_p50.
4. Training cost versus N: one training step (forward, backward, AdamW; the same --training-rows rows
   of one profile) of xpeft_hard on random pools of each --training-sizes N, each timed between two
   single_adapter steps: train_time_ratio_xpeft_hard_n{N} (median over rounds) and their max/min,
   train_time_ratio_spread.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench import scale_store as store
from bench.common import configured_backbone, percentile, train_step
from profilekit.data import NEWS_AUTHORS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scale run's flags, every one with a default."""
    group = parser.add_argument_group("scale", "profiles per machine, serving them, training cost versus N")
    group.add_argument("--scale-profiles", type=int, default=1_000_000, help="profiles to register (target)")
    group.add_argument("--scale-database-url", default="",
                       help="SQLAlchemy URL of an empty database to fill (kept afterwards); "
                            "default: a temporary SQLite file, removed afterwards")
    group.add_argument("--scale-chunk", type=int, default=10_000, help="profiles per insert transaction")
    group.add_argument("--scale-seconds", type=float, default=3600.0, help="time budget of the registration")
    group.add_argument("--scale-max-rss-mb", type=float, default=16_384.0,
                       help="registration stops once this process's RSS exceeds this")
    group.add_argument("--scale-min-free-disk-mb", type=float, default=4096.0,
                       help="registration stops once the database's disk has less free space than this")
    group.add_argument("--scale-head", choices=("shared", "profile"), default="shared",
                       help="shared: profiles use a warm-like pool's head (no head stored per profile)")
    group.add_argument("--scale-pool-size", type=int, default=100, help="N, adapters of the pool")
    group.add_argument("--scale-k", type=int, default=50, help="k of the hard masks")
    group.add_argument("--scale-templates", type=int, default=16,
                       help="real states saved by the engine whose extras the profiles reuse")
    group.add_argument("--scale-rows", type=int, default=64, help="rows per served batch")
    group.add_argument("--scale-batches", type=int, default=40, help="timed batches per case")
    group.add_argument("--scale-hot", type=int, default=1000, help="profiles of the hot case (all cached)")
    group.add_argument("--scale-cache-entries", type=int, default=0,
                       help="ArtifactCache entries of the max case (within the settings' artifact_cache_bytes); "
                            "0: 100,000")
    group.add_argument("--scale-fill-cache", action=argparse.BooleanOptionalAction, default=True,
                       help="fill the max case's cache with random profiles before timing (steady state)")
    group.add_argument("--scale-cold", type=int, default=300, help="cold first predictions timed")
    group.add_argument("--scale-texts", type=int, default=256, help="news texts the batches draw from")
    group.add_argument("--scale-data", default=str(NEWS_AUTHORS), help="JSONL rows with text and category")
    group.add_argument("--scale-seed", type=int, default=0)
    group.add_argument("--training-sizes", default="50,100,200,400,800", help="pool sizes N, comma-separated")
    group.add_argument("--training-rows", type=int, default=32, help="rows of one training step")
    group.add_argument("--training-repeats", type=int, default=5, help="timed rounds of training steps")


def timed(fn: Callable[..., object], *args) -> float:
    """Seconds of one call fn(*args)."""
    began = time.perf_counter()
    fn(*args)
    return time.perf_counter() - began


def run(args: argparse.Namespace, report: Callable[[str, object], None], *, backbone=None) -> dict[str, float]:
    """Run all four parts; print every figure through `report` and return the numeric ones."""
    from profilekit.data import read_rows
    from profilekit.engine import Engine
    from profilekit.serving import EngineCache
    from profilekit.settings import get_settings

    figures: dict[str, float] = {}

    def emit(name: str, value) -> None:
        report(name, value)
        if isinstance(value, (int, float)):
            figures[name] = float(value)

    settings = get_settings()
    if backbone is None:
        backbone = configured_backbone()
    rows = read_rows(args.scale_data)
    rng = random.Random(args.scale_seed)
    texts = [row.text for row in rng.sample(rows, min(args.scale_texts, len(rows)))]
    labels = tuple(sorted({row.label for row in rows}))
    engines = EngineCache(settings, engine=Engine(backbone))  # the given backbone, not the settings' one
    folder = Path(tempfile.mkdtemp(prefix="profilekit-scale-"))
    try:
        url = args.scale_database_url or f"sqlite:///{folder / 'scale.sqlite'}"
        registered, sessions, db = register(args, engines, labels, url, folder, emit)
        try:
            serve(args, engines, sessions, registered, texts, emit)
            cold(args, engines, sessions, registered, texts, emit)
        finally:
            db.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    train(args, engines.engine(), texts, emit)
    return figures


# ---- 1. registration ---------------------------------------------------------------------------------
def register(args, engines, labels, url: str, folder: Path, emit):
    """A fresh schema, the pool, then profiles in bulk; → (profile ids, session factory, SQLAlchemy engine)."""
    from sqlalchemy.engine import make_url

    from profilekit.pool import PoolSpec, random_pool
    from profilekit.store import make_engine, make_session_factory, repo
    from profilekit.store.blobs import PoolBlobs
    from profilekit.store.migrate import upgrade
    from profilekit.store.models import new_id

    backbone = engines.engine().backbone
    upgrade(url)
    db = make_engine(url)
    sessions = make_session_factory(db)
    if args.scale_head == "shared":
        pool = store.warm_like_pool(backbone, num_adapters=args.scale_pool_size, labels=labels, seed=args.scale_seed)
    else:
        pool = random_pool(PoolSpec(backbone.backbone_id, args.scale_pool_size, backbone.num_layers,
                                    backbone.hidden_size, seed=args.scale_seed))
    settings = engines.settings.model_copy(update={"data_dir": folder})  # db:// pools in this run's database
    engines.blobs = PoolBlobs(settings, bind=db) if settings.pool_store == "db" else PoolBlobs(settings)
    pool_hash = store.register_pool(sessions, pool, engines)
    with sessions() as session:
        engine = engines.training_engine(repo.get_pool(session, pool_hash=pool_hash))  # as the worker loads it
    templates = store.template_artifacts(engine, count=args.scale_templates, head=args.scale_head, labels=labels,
                                         k=args.scale_k, seed=args.scale_seed)
    tenant = f"scale-{new_id()[:8]}"  # a database given by URL may hold earlier runs' profiles
    tenths = max(1, args.scale_profiles // 10)

    def progress(result) -> None:  # to stderr, so stdout keeps only `name: value` lines
        if len(result.ids) // tenths > (len(result.ids) - result.chunks[-1][0]) // tenths:
            print(f"registered {len(result.ids)} profiles in {sum(s for _, s in result.chunks):.0f} s",
                  file=sys.stderr, flush=True)

    database = make_url(url).render_as_string(hide_password=True)
    emit("scale_profiles", f"X-PEFT hard (k={args.scale_k}, N={args.scale_pool_size}, head={args.scale_head}) "
                           f"in {database}; masks are random, not trained")
    result = store.register_profiles(db, pool_hash=pool_hash, templates=templates, target=args.scale_profiles,
                                     chunk=args.scale_chunk, max_seconds=args.scale_seconds,
                                     max_rss_mb=args.scale_max_rss_mb, min_free_disk_mb=args.scale_min_free_disk_mb,
                                     disk_path=store.database_folder(url),
                                     seed=args.scale_seed, tenant=tenant, on_chunk=progress)
    counted = store.count_registered(db, tenant=tenant)
    if counted != len(result.ids):
        raise RuntimeError(f"registered {len(result.ids)} profiles but the database holds {counted}")
    first, last = result.chunks[0], result.chunks[-1]
    emit("max_profiles_profilekit", counted)
    emit("scale_stopped_by", result.stopped_by)
    emit("register_seconds", result.seconds)
    emit("register_seconds_per_1000_first_chunk", 1000 * first[1] / first[0])
    emit("register_seconds_per_1000_last_chunk", 1000 * last[1] / last[0])
    emit("stored_bytes_per_profile", result.stored_bytes)
    emit("artifact_row_bytes", result.row_bytes)
    size = store.database_mb(db)
    if size is not None:
        emit("database_mb", size)
        emit("database_bytes_per_profile", size * 2**20 / counted)
    emit("rss_mb_after_registration", store.rss_mb())
    return result.ids, sessions, db


# ---- 2. serving ------------------------------------------------------------------------------------
def serve_batch(sessions, engines, cache, profile_ids: list[str], texts: list[str]):
    """One served batch: the profiles' states from the database and `cache`, then one forward → predictions."""
    from profilekit.serving import load_states

    with sessions() as session:
        states = load_states(session, profile_ids=profile_ids, engines=engines, cache=cache)
    return engines.engine().predict(texts, [states[pid][0] for pid in profile_ids])


def serve(args, engines, sessions, ids: list[str], texts: list[str], emit) -> None:
    from profilekit.serving import artifact_cache
    from profilekit.settings import get_settings

    backbone = engines.engine().backbone
    rng = random.Random(args.scale_seed + 1)
    rows = args.scale_rows
    hot_ids = ids[: args.scale_hot]
    entries, settings = args.scale_cache_entries or 100_000, get_settings()
    caches = {"1k": artifact_cache(settings, max_entries=max(entries, len(hot_ids))),
              "max": artifact_cache(settings, max_entries=entries)}
    for start in range(0, len(hot_ids), 1000):  # every hot profile loaded once, as in steady serving
        fill_cache(sessions, engines, caches["1k"], hot_ids[start:start + 1000])
    if args.scale_fill_cache:
        fill = rng.sample(ids, min(entries, len(ids)))
        began = time.perf_counter()
        for start in range(0, len(fill), 1000):
            fill_cache(sessions, engines, caches["max"], fill[start:start + 1000])
        emit("cache_fill_ms_per_profile", 1000 * (time.perf_counter() - began) / max(1, len(fill)))
    emit("cache_entries_max", len(caches["max"]))
    emit("artifact_cache_resident_mb", caches["max"].resident_bytes / 2**20)

    @torch.inference_mode()
    def plain(batch_texts):
        backbone.model(**backbone.tokenize(batch_texts))

    population = {"1k": hot_ids, "max": ids}
    seconds: dict[str, list[float]] = {"1k": [], "max": [], "plain": []}
    ratios: dict[str, list[float]] = {"1k": [], "max": []}
    misses = 0
    for repeat in range(args.scale_batches + 1):  # the first round warms up and is not recorded
        batch_texts = [rng.choice(texts) for _ in range(rows)]
        batches = {case: [rng.choice(population[case]) for _ in range(rows)] for case in population}
        order = ("1k", "max") if repeat % 2 == 0 else ("max", "1k")  # neither case always goes first
        base = [timed(plain, batch_texts)]
        took = {}
        for case in order:
            before = caches[case].misses
            took[case] = timed(serve_batch, sessions, engines, caches[case], batches[case], batch_texts)
            if case == "max" and repeat:
                misses += caches[case].misses - before
            base.append(timed(plain, batch_texts))
            if repeat:
                ratios[case].append((base[-2] + base[-1]) / 2 / took[case])
        if repeat:
            seconds["plain"] += base
            for case in order:
                seconds[case].append(took[case])
    emit("scale_rows_per_batch", rows)
    emit("backbone_rows_per_second", rows / statistics.median(seconds["plain"]))
    for case in ("1k", "max"):
        emit(f"mixed_vs_backbone_ratio_{case}", statistics.median(ratios[case]))
        emit(f"batch_latency_ms_p50_{case}", 1000 * statistics.median(seconds[case]))
        emit(f"batch_latency_ms_p99_{case}", 1000 * percentile(seconds[case], 99))
    emit("p99_latency_ratio_max_vs_1k", percentile(seconds["max"], 99) / percentile(seconds["1k"], 99))
    emit("cache_misses_per_batch_max", misses / args.scale_batches)
    emit("rss_mb_serving", store.rss_mb())


def fill_cache(sessions, engines, cache, profile_ids: list[str]) -> None:
    from profilekit.serving import load_states

    with sessions() as session:
        load_states(session, profile_ids=profile_ids, engines=engines, cache=cache)


# ---- 3. cold profile to first prediction -------------------------------------------------------------
def cold(args, engines, sessions, ids: list[str], texts: list[str], emit) -> None:
    """Profiles in no cache: a fresh session reads the profile and its artifact, engine.load decodes it,
    one row is composed and run, its label read."""
    from profilekit.serving import artifact_cache, load_states
    from profilekit.settings import get_settings

    rng = random.Random(args.scale_seed + 2)
    cache = artifact_cache(get_settings(), max_entries=max(1, args.scale_cold))
    total, loads = [], []
    for pid in rng.sample(ids, min(args.scale_cold, len(ids))):
        text = rng.choice(texts)
        began = time.perf_counter()
        with sessions() as session:
            state = load_states(session, profile_ids=[pid], engines=engines, cache=cache)[pid][0]
        loaded = time.perf_counter()
        label = engines.engine().predict([text], [state])[0].label
        total.append(time.perf_counter() - began)
        loads.append(loaded - began)
        if label is None:
            raise RuntimeError(f"profile {pid} gave no label")
    emit("cold_first_prediction_ms_p50", 1000 * statistics.median(total))
    emit("cold_first_prediction_ms_p99", 1000 * percentile(total, 99))
    emit("cold_load_ms_p50", 1000 * statistics.median(loads))


# ---- 4. training cost versus N -------------------------------------------------------------------------
def train(args, engine, texts: list[str], emit) -> None:
    from profilekit.pool import PoolSpec, random_pool

    backbone = engine.backbone
    sizes = [int(n) for n in args.training_sizes.split(",") if n.strip()]
    if not sizes:  # --training-sizes "": the scale run without this part
        return
    batch = (texts * (1 + args.training_rows // len(texts)))[: args.training_rows]
    default = engine.pool
    steps = {"single_adapter": train_step(engine, "single_adapter", batch)}
    for n in sizes:  # each state keeps its own pool; the engine serves them all
        engine.use_pool(random_pool(PoolSpec(backbone.backbone_id, n, backbone.num_layers, backbone.hidden_size,
                                             seed=n)))
        steps[n] = train_step(engine, "xpeft_hard", batch)
    engine.use_pool(default)
    base, ratios = [], {n: [] for n in sizes}
    for repeat in range(args.training_repeats + 1):  # the first round warms up
        base.append(timed(steps["single_adapter"]))
        for n in sizes:
            seconds = timed(steps[n])
            base.append(timed(steps["single_adapter"]))
            if repeat:
                ratios[n].append(seconds / ((base[-2] + base[-1]) / 2))
    emit("train_step_seconds_single_adapter", statistics.median(base[len(sizes) + 1:]))
    medians = {n: statistics.median(ratios[n]) for n in sizes}
    for n in sizes:
        emit(f"train_time_ratio_xpeft_hard_n{n}", medians[n])
    emit("train_time_ratio_spread", max(medians.values()) / min(medians.values()))
