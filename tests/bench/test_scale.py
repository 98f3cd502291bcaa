"""`profilekit bench`'s scale run on a tiny BERT: the profiles it reports are really in the database, a
random one served through the benchmark's path predicts what its own artifact predicts when loaded
directly, the random masks are valid hard masks, and every figure is printed. Timings are never asserted."""

import argparse
import random

import pytest
import torch
from sqlalchemy import func, select

from bench import scale
from bench import scale_store as store
from profilekit.engine import Engine
from profilekit.methods.xpeft.artifact import HEADER_BYTES, decode_hard, encode_hard
from profilekit.serving import ArtifactCache, EngineCache
from profilekit.settings import Settings
from profilekit.store import make_engine
from profilekit.store.models import Artifact, Profile
from tests.conftest import TEXTS

TINY_FLAGS = ["--scale-profiles", "2000", "--scale-chunk", "500", "--scale-rows", "8", "--scale-batches", "2",
              "--scale-hot", "100", "--scale-cache-entries", "300", "--scale-cold", "5", "--scale-texts", "32",
              "--scale-templates", "3", "--training-sizes", "50,100", "--training-rows", "4",
              "--training-repeats", "1"]
LABELS = ("food", "politics", "sports", "travel", "world")


def tiny_args(*extra):
    parser = argparse.ArgumentParser()
    scale.add_arguments(parser)
    return parser.parse_args(TINY_FLAGS + list(extra))


def test_run_registers_what_it_reports_and_prints_every_figure(tiny_backbone, tmp_path):
    url = f"sqlite:///{tmp_path / 'scale.sqlite'}"
    printed = {}
    figures = scale.run(tiny_args("--scale-database-url", url), lambda name, value: printed.setdefault(name, value),
                        backbone=tiny_backbone)
    expected = ["max_profiles_profilekit", "register_seconds", "register_seconds_per_1000_first_chunk",
                "register_seconds_per_1000_last_chunk", "stored_bytes_per_profile", "artifact_row_bytes",
                "database_mb", "database_bytes_per_profile", "rss_mb_after_registration", "cache_fill_ms_per_profile",
                "cache_entries_max", "artifact_cache_resident_mb", "backbone_rows_per_second",
                "mixed_vs_backbone_ratio_1k", "mixed_vs_backbone_ratio_max", "batch_latency_ms_p50_1k",
                "batch_latency_ms_p99_1k", "batch_latency_ms_p50_max", "batch_latency_ms_p99_max",
                "p99_latency_ratio_max_vs_1k", "cache_misses_per_batch_max", "rss_mb_serving",
                "cold_first_prediction_ms_p50", "cold_first_prediction_ms_p99", "cold_load_ms_p50",
                "train_step_seconds_single_adapter", "train_time_ratio_xpeft_hard_n50",
                "train_time_ratio_xpeft_hard_n100", "train_time_ratio_spread"]
    for name in expected:
        assert name in figures and name in printed, name
        assert figures[name] > 0, name
    assert set(figures) <= set(printed)
    assert "masks are random, not trained" in printed["scale_profiles"]
    assert figures["max_profiles_profilekit"] == 2000 and printed["scale_stopped_by"] == "target"
    assert figures["cache_entries_max"] == 300  # the max case's cache is bounded, so most rows miss it
    with make_engine(url).connect() as connection:  # the rows exist, each profile pointing at its artifact
        current = connection.scalar(select(func.count()).select_from(Profile)
                                    .join(Artifact, Artifact.id == Profile.current_artifact_id)
                                    .where(Artifact.profile_id == Profile.id, Artifact.method == "xpeft_hard"))
        assert current == 2000
        assert connection.scalar(select(func.count()).select_from(Artifact)) == 2000


@pytest.fixture
def registered(tiny_backbone, tmp_path, request):
    """300 profiles registered by the benchmark's own registration, on the tiny backbone."""
    head = getattr(request, "param", "shared")
    engines = EngineCache(Settings(data_dir=tmp_path), engine=Engine(tiny_backbone))
    args = tiny_args("--scale-profiles", "300", "--scale-chunk", "128", "--scale-head", head)
    ids, sessions, db = scale.register(args, engines, LABELS, f"sqlite:///{tmp_path / 'scale.sqlite'}", tmp_path,
                                       lambda name, value: None)
    yield ids, sessions, engines
    db.dispose()


@pytest.mark.parametrize("registered", ["shared", "profile"], indirect=True)
def test_a_random_profile_served_by_the_benchmark_predicts_what_its_artifact_predicts(registered):
    ids, sessions, engines = registered
    engine = engines.engine()
    picked = random.Random(1).sample(ids, len(TEXTS))
    few = ArtifactCache(max_entries=4)  # most rows miss the cache
    served = scale.serve_batch(sessions, engines, few, picked, TEXTS)
    with sessions() as session:
        for pid, text, prediction in zip(picked, TEXTS, served):
            state = engine.load(session.get(Profile, pid).current_artifact.payload)
            alone = engine.predict([text], [state])[0]
            assert prediction.label == alone.label, pid
            assert prediction.scores == pytest.approx(alone.scores, abs=1e-5), pid


def test_registered_masks_are_valid_distinct_hard_masks(registered):
    ids, sessions, engines = registered
    pool = engines.engine().pool
    with sessions() as session:  # engine.load refuses a hard mask whose popcount is not k
        masks = [engines.engine().load(session.get(Profile, pid).current_artifact.payload).mask_logits.bool()
                 for pid in ids[:50]]
    for mask in masks:
        assert mask.shape == (2, 2, pool.num_adapters)  # [L, A/B, N] of the tiny backbone
        assert (mask.sum(-1) == 50).all()  # k of N per layer and A/B
    assert len({tuple(m.flatten().tolist()) for m in masks}) == 50  # every profile its own mask


def test_random_hard_masks_have_encode_hards_layout():
    generator = torch.Generator().manual_seed(0)
    bodies = store.random_hard_masks(20, layers=3, adapters=13, k=4, generator=generator)
    header = encode_hard(torch.zeros(3, 2, 13, dtype=torch.bool), "ab" * 32, 4)[:HEADER_BYTES]
    for body in bodies:
        payload = header + body.tobytes()
        selected, k = decode_hard(payload, pool_hash="ab" * 32, num_layers=3)  # refuses a popcount other than k
        assert k == 4 and encode_hard(selected, "ab" * 32, 4) == payload
