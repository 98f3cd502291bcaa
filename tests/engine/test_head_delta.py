"""A learned low-rank delta of the shared head (head_delta_rank) and float16 / int8 storage (stored_dtype):
what the profile learns, what it stores, and that the stored profile scores as the trained one."""

import math
from types import SimpleNamespace

import pytest
import torch

from profilekit.errors import ArtifactError
from profilekit.evaluation.plan import METHODS
from profilekit.evaluation.run import Evaluation
from profilekit.methods.base import Artifact, EngineContext
from profilekit.methods.xpeft.artifact import DELTA, HALF, HEADER_BYTES, INT8, hard_mask_bytes, save
from profilekit.methods.xpeft.config import XPeftConfig
from profilekit.methods.xpeft.layer import XPeftState
from profilekit.training import evaluate, train_profiles
from tests.engine.test_training import FAST, profile, warm_engine

DELTA_1 = dict(k=3, head="shared", prior=True, layer_norm=False, head_delta_rank=1, stored_dtype="float16")


def trained(engine, **changes):
    data = profile("alice", 6, labels=("food", "politics", "sports"))
    return data, train_profiles(engine, [data], "xpeft_hard", config=FAST, **(DELTA_1 | changes))[0]


def test_training_learns_the_delta_and_leaves_the_shared_head_alone(tiny_backbone, tiny_pool):
    engine, head = warm_engine(tiny_backbone, tiny_pool)
    before = (head.weight.clone(), head.bias.clone())
    start = engine.new_state("xpeft_hard", ("food", "politics", "sports"), seed=0, **DELTA_1)
    assert torch.equal(start.delta_u, torch.zeros(3, 1)) and start.delta_v.shape == (1, 32)
    weight, _ = start.scoring_head(engine.ctx)
    assert torch.equal(weight, head.weight[[0, 1, 2]])  # u = 0: the shared head's rows at the start
    data, result = trained(engine)
    state = result.state
    assert state.delta_u.abs().sum() > 0  # u learns
    assert torch.equal(engine.pool.head.weight, before[0]) and torch.equal(engine.pool.head.bias, before[1])
    assert result.trainable_params == 2 * 12 * 2 + 3 + (3 + 32)  # masks, prior, u [3, 1] and v [1, 32]
    [*_, own] = state.optimizer_groups()
    assert own["lr"] == state.config.prior_lr and {id(p) for p in own["params"]} == \
        {id(state.prior), id(state.delta_u), id(state.delta_v)}


@pytest.mark.parametrize("stored", ["float16", "int8"])
def test_a_smaller_delta_profile_loads_back_and_scores_as_trained(tiny_backbone, tiny_pool, stored):
    engine, _ = warm_engine(tiny_backbone, tiny_pool)
    data, result = trained(engine, stored_dtype=stored)
    artifact = engine.save(result.state)
    served = engine.load(artifact.to_bytes())
    assert served.config.head_delta_rank == 1 and served.config.stored_dtype == stored
    assert served.delta_u.dtype == torch.float32 and served.delta_v.shape == (1, 32)
    assert torch.allclose(served.delta_u, result.state.delta_u, atol=1e-3, rtol=1e-3)
    v, largest = result.state.delta_v.detach(), result.state.delta_v.detach().abs().max()
    assert (served.delta_v - v).abs().max() <= (largest / 254 if stored == "int8" else largest / 1000) * 1.01
    texts = data.texts[:6]
    from profilekit.training.loop import logits_of

    with torch.no_grad():
        trained_logits = logits_of(engine, [result.state] * 6, texts)
        served_logits = logits_of(engine, [served] * 6, texts)
    assert torch.allclose(served_logits, trained_logits, atol=1e-2)
    assert torch.equal(served_logits.argmax(-1), trained_logits.argmax(-1))
    assert engine.save(served).to_bytes() == artifact.to_bytes()  # a loaded profile saves the same bytes


def test_the_stored_bytes_add_up(tiny_backbone, tiny_pool):
    engine, _ = warm_engine(tiny_backbone, tiny_pool)  # N=12, L=2, d=32, b=8, 4 labels in the shared head
    labels = ("politics", "sports", "travel")
    C, d, b, L = 3, 32, 8, 2
    base = HEADER_BYTES + hard_mask_bytes(12, L) + 1  # header, masks, one byte of scored labels
    cases = {(): base + 4 * C,
             (("stored_dtype", "float16"),): base + 2 * C,
             (("head_delta_rank", 1),): base + 4 * C + 1 + 4 * (C + d),
             (("head_delta_rank", 2), ("stored_dtype", "float16")): base + 2 * C + 1 + 2 * 2 * (C + d),
             (("head_delta_rank", 1), ("stored_dtype", "float16"), ("layer_norm", True)):
                 base + 2 * C + 1 + 2 * (C + d) + 2 * 2 * L * b,
             (("head_delta_rank", 2), ("stored_dtype", "int8")): base + 2 * C + 1 + 2 * 2 * C + 2 * 2 + 2 * d,
             (("stored_dtype", "int8"),): base + 2 * C}
    for changes, size in cases.items():
        config = dict(k=3, head="shared", prior=True, layer_norm=False) | dict(changes)
        artifact = engine.save(engine.new_state("xpeft_hard", labels, **config))
        assert artifact.stored_bytes == size and artifact.extras == b"", changes


def minilm_shaped_ctx(num_labels: int):
    """What the packaged MiniLM (L=6, d=384) with a warm pool of N=100 looks like to save(), without loading it."""
    from bench.scale_store import warm_like_pool

    backbone = SimpleNamespace(backbone_id="minilm-shaped", num_layers=6, hidden_size=384)
    pool = warm_like_pool(backbone, num_adapters=100, labels=tuple(f"L{i}" for i in range(num_labels)), seed=0)
    return EngineContext("minilm-shaped", 6, 384, 1000, pool=pool, pools={pool.pool_hash: pool})


def test_the_delta_profile_fits_in_a_kilobyte_on_minilm_with_100_adapters():
    ctx = minilm_shaped_ctx(29)  # the news authors' 29 categories: ⌈29/8⌉ = 4 bytes of scored labels
    config = XPeftConfig(**METHODS["xpeft_hard_warm_delta"].preset)
    assert config.stored_dtype == "int8"
    sizes = {}
    for own in (2, 13, 29):
        state = XPeftState(config, ctx, tuple(f"L{i}" for i in range(own)), torch.Generator().manual_seed(0))
        sizes[own] = save(state, ctx).stored_bytes
        # header 48, masks 156, labels 4, prior 2·C, rank byte, u 2·C, v: one float16 scale and 384 int8
        assert sizes[own] == 48 + 156 + 4 + 2 * own + 1 + 2 * own + 2 + 384 == 595 + 4 * own
    assert sizes[13] == 647 and sizes[29] == 711 < 1000  # every news author (2–13 labels), even all 29
    float32 = XPeftState(XPeftConfig(**(METHODS["xpeft_hard_warm_delta"].preset | {"stored_dtype": "float32"})), ctx,
                         ("L0", "L1"), torch.Generator().manual_seed(0))
    assert save(float32, ctx).stored_bytes == 48 + 156 + 4 + 4 * 2 + 1 + 4 * (2 + 384)


def test_a_truncated_or_padded_payload_is_refused(tiny_backbone, tiny_pool):
    engine, _ = warm_engine(tiny_backbone, tiny_pool)
    artifact = engine.save(engine.new_state("xpeft_hard", ("politics", "sports"), **DELTA_1))
    assert artifact.payload[HEADER_BYTES - 1] & (DELTA | HALF | INT8) == DELTA | HALF
    for payload in (artifact.payload[:-1], artifact.payload[:-200], artifact.payload + b"\0\0"):
        with pytest.raises(ArtifactError):
            engine.load(Artifact(artifact.method, payload, artifact.extras))
    rank_at = HEADER_BYTES + hard_mask_bytes(12, 2) + 1 + 2 * 2  # header, masks, labels, two float16
    for rank in (0, 17):
        bad = bytearray(artifact.payload)
        bad[rank_at] = rank
        with pytest.raises(ArtifactError, match="rank"):
            engine.load(Artifact(artifact.method, bytes(bad), artifact.extras))
    unknown = bytearray(artifact.payload)
    unknown[HEADER_BYTES - 1] |= 64
    with pytest.raises(ArtifactError, match="unknown flags"):
        engine.load(Artifact(artifact.method, bytes(unknown), artifact.extras))
    int8 = engine.save(engine.new_state("xpeft_hard", ("politics", "sports"), **(DELTA_1 | {"stored_dtype": "int8"})))
    alone = bytearray(int8.payload)
    alone[HEADER_BYTES - 1] &= ~HALF
    with pytest.raises(ArtifactError, match="INT8 without HALF"):
        engine.load(Artifact(int8.method, bytes(alone), int8.extras))
    for payload in (int8.payload[:-1], int8.payload + b"\0"):
        with pytest.raises(ArtifactError):
            engine.load(Artifact(int8.method, payload, int8.extras))


@pytest.mark.parametrize("fields,named", [
    ({"head_delta_rank": 1, "head": "profile"}, "head_delta_rank"),
    ({"head_delta_rank": 1, "head": "shared", "prior": False}, "head_delta_rank"),
    ({"head_delta_rank": 17, "head": "shared"}, "head_delta_rank"),
    ({"head_delta_rank": -1, "head": "shared"}, "head_delta_rank"),
    ({"stored_dtype": "int4"}, "stored_dtype"),
])
def test_invalid_configs_name_the_field(fields, named):
    with pytest.raises(ValueError, match=named):
        XPeftConfig(**fields)


def test_the_default_is_the_byte_sized_profile_on_a_warm_pool_and_an_own_head_on_a_random_one(
        tiny_backbone, tiny_pool):
    engine, _ = warm_engine(tiny_backbone, tiny_pool)
    labels = ("food", "politics", "sports")
    warm = engine.new_state("xpeft_hard", labels, seed=0, k=3)  # head='auto', nothing else set
    assert warm.config == XPeftConfig(k=3, **{k: v for k, v in DELTA_1.items() if k != "k"} | {"stored_dtype": "int8"})
    assert warm.head_weight is None and warm.delta_u.shape == (3, 1) and warm.ln_weight is None
    assert len(engine.save(warm).payload) == HEADER_BYTES + hard_mask_bytes(12, 2) + 1 + 1 + 4 * 3 + 2 + 32
    own = engine.new_state("xpeft_hard", labels, seed=0, k=3, layer_norm=True)  # an explicit field is kept
    assert own.config.head == "shared" and own.config.layer_norm and own.config.head_delta_rank == 1
    engine.use_pool(tiny_pool)  # a random pool: no shared head
    plain = engine.new_state("xpeft_hard", labels, seed=0, k=3)
    assert plain.config == XPeftConfig(k=3, head="profile", layer_norm=True, head_delta_rank=0,
                                       stored_dtype="float32")
    assert plain.head_weight.shape == (3, 32) and plain.delta_u is None
    with pytest.raises(ValueError, match="head_delta_rank=2 needs the shared head"):
        engine.new_state("xpeft_hard", labels, seed=0, k=3, head_delta_rank=2)


def test_an_evaluation_scores_a_smaller_profile_as_stored(tiny_backbone, tiny_pool):
    engine, _ = warm_engine(tiny_backbone, tiny_pool)
    data, result = trained(engine, stored_dtype="int8")
    artifact = engine.save(result.state)
    fake = SimpleNamespace(engine=engine, train_config=FAST)
    scored = Evaluation._as_stored(fake, result, artifact, [data])
    assert scored is not result.state and not any(p.requires_grad for p in scored.parameters())
    truth = [data.labels[i] for i in result.split.holdout]
    predicted, _ = evaluate(engine, [scored] * len(truth), [data.texts[i] for i in result.split.holdout], truth)
    assert result.accuracy == sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    _, float32 = trained(engine, stored_dtype="float32")
    assert Evaluation._as_stored(fake, float32, engine.save(float32.state), [data]) is float32.state
    assert math.isfinite(float32.accuracy)
