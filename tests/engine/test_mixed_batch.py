"""One forward over rows of many profiles and methods equals each row run alone with its profile."""

import pytest
import torch

from profilekit.engine import Engine
from profilekit.methods import get_method, method_names
from profilekit.methods.xpeft import layer as xpeft_layer
from tests.conftest import TEXTS

METHODS = method_names()  # every registered method, so a new one is tested without touching this file
# sizes for the tiny backbone (d=32, |V|=1000, texts ≤ 32 tokens, 64 positions) come from each method's
# registration (`tiny`); the prompt methods' differ, so rows of one batch carry prompts of several lengths
TINY_CONFIGS = {m: get_method(m).tiny for m in METHODS}


def trained_looking(state, seed):
    """Perturb every parameter so no profile sits at its initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in state.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return state


def new(engine, method, labels, **kwargs):
    return engine.new_state(method, labels, **(TINY_CONFIGS.get(method, {}) | kwargs))


def make_profiles(engine):
    profiles = []
    for i, method in enumerate(METHODS * 2):
        labels = ["politics", "sports", "food"][: 2 + i % 2]
        profiles.append(trained_looking(new(engine, method, labels, seed=i), seed=100 + i))
    return profiles


def run(engine, texts, states):
    tokens = engine.backbone.tokenize(texts)
    with torch.no_grad():
        return engine.forward(tokens["input_ids"], tokens["attention_mask"], states)


def assert_rows_equal_single_runs(engine, texts, states):
    batch = run(engine, texts, states)
    for row, (text, state) in enumerate(zip(texts, states, strict=True)):
        alone = run(engine, [text], [state])
        method = getattr(state, "method", None)
        assert torch.allclose(batch.pooled[row], alone.pooled[0], atol=1e-5), (row, method)
        n_tokens = alone.hidden.shape[1]
        assert torch.allclose(batch.hidden[row, :n_tokens], alone.hidden[0], atol=1e-5), (row, method)
        if state is not None:
            n = len(state.labels)
            assert torch.allclose(batch.logits[row, :n], alone.logits[0, :n], atol=1e-5), (row, method)
            assert batch.labels[row] == state.labels
        else:
            assert batch.labels[row] is None


def test_each_row_of_a_mixed_batch_equals_its_single_profile_run(tiny_engine):
    profiles = make_profiles(tiny_engine)
    states = profiles + [None] + profiles[:3]  # 18 profiles of all 9 methods, a plain row, repeats
    texts = (TEXTS * 3)[: len(states)]
    assert_rows_equal_single_runs(tiny_engine, texts, states)


@pytest.fixture(scope="module")
def shared_engine(tokenizer):
    """One tiny engine for the pairwise matrix (an Engine wraps its backbone once)."""
    from profilekit.backbone.loader import wrap_model
    from profilekit.pool import PoolSpec, random_pool
    from tests.conftest import TinyTokenizer, tiny_model

    backbone = wrap_model(tiny_model(), TinyTokenizer(tokenizer), backbone_id="bert:tiny:test", max_length=32)
    return Engine(backbone, random_pool(PoolSpec(backbone.backbone_id, 12, 2, 32, reduction_factor=4, seed=7,
                                                 init_std=0.2)))


PAIRS = [(a, b) for i, a in enumerate(METHODS + [None]) for b in (METHODS + [None])[i + 1:]]


@pytest.mark.parametrize("first, second", PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
def test_every_pair_of_methods_in_one_batch(shared_engine, first, second):
    """Rows of two methods interleaved, the shorter text on the prompt row where there is one."""
    states = [None if m is None else trained_looking(new(shared_engine, m, ["x", "y"], seed=i), 50 + i)
              for i, m in enumerate((first, second))]
    rows = [states[0], states[1], states[1], states[0]]
    texts = [TEXTS[1], TEXTS[5], TEXTS[0], TEXTS[7]]
    assert_rows_equal_single_runs(shared_engine, texts, rows)


def test_plain_rows_are_the_untouched_backbone(tiny_backbone, tiny_pool):
    tokens = tiny_backbone.tokenize(TEXTS[:3])
    with torch.no_grad():
        reference = tiny_backbone.model(**tokens).last_hidden_state
    engine = Engine(tiny_backbone, tiny_pool)
    profile = trained_looking(engine.new_state("xpeft_hard", ["a", "b"], k=3), 1)
    out = run(engine, TEXTS[:3], [None, profile, None])
    assert torch.allclose(out.hidden[[0, 2]], reference[[0, 2]], atol=1e-6)
    assert not torch.allclose(out.hidden[1], reference[1], atol=1e-3)


def test_profiles_change_predictions_differently(tiny_engine):
    a, b = (trained_looking(tiny_engine.new_state("xpeft_hard", ["x", "y"], k=3, seed=s), s) for s in (1, 2))
    out = run(tiny_engine, [TEXTS[0]] * 2, [a, b])
    assert not torch.allclose(out.pooled[0], out.pooled[1], atol=1e-4)


def test_composition_runs_once_per_distinct_profile(tiny_engine, monkeypatch):
    calls = []
    original = xpeft_layer.aggregate

    def counting(weights, pool):
        calls.append(weights.shape[0])
        return original(weights, pool)

    monkeypatch.setattr(xpeft_layer, "aggregate", counting)
    hard = [tiny_engine.new_state("xpeft_hard", ["a", "b"], k=3, seed=i) for i in range(3)]
    soft = tiny_engine.new_state("xpeft_soft", ["a", "b"], seed=9)
    rows = [hard[0]] * 5 + [hard[1]] * 4 + [hard[2], soft, soft]
    run(tiny_engine, (TEXTS * 2)[: len(rows)], rows)
    assert sorted(calls) == [1, 3]  # one aggregation for the 3 hard profiles, one for the soft one


@pytest.mark.parametrize("method", METHODS)
def test_artifact_round_trip_serves_identical_outputs(shared_engine, method):
    engine = shared_engine
    state = trained_looking(new(engine, method, ["a", "b", "c"], seed=4), 5)
    restored = engine.load(engine.save(state).to_bytes())
    before, after = run(engine, TEXTS, [state] * len(TEXTS)), run(engine, TEXTS, [restored] * len(TEXTS))
    assert torch.allclose(before.logits[:, :3], after.logits[:, :3], atol=1e-6)
    assert restored.labels == ("a", "b", "c") and restored.config == state.config


def test_a_served_hard_mask_keeps_only_its_selection_and_serves_beside_its_trained_self(tiny_engine):
    trained = trained_looking(tiny_engine.new_state("xpeft_hard", ["a", "b"], k=3, seed=1), 5)
    served = tiny_engine.load(tiny_engine.save(trained).to_bytes())
    assert served.mask_logits.dtype == torch.bool and not served.mask_logits.requires_grad
    assert served.mask_logits.sum(-1).eq(3).all()  # k of N per layer and A/B
    out = run(tiny_engine, [TEXTS[0]] * 2, [trained, served])
    assert torch.allclose(out.logits[0], out.logits[1], atol=1e-6)
    assert tiny_engine.save(served).to_bytes() == tiny_engine.save(trained).to_bytes()


def test_stored_bytes_of_a_hard_mask_profile(tiny_engine):
    from profilekit.methods.xpeft.artifact import HEADER_BYTES, hard_mask_bytes

    state = tiny_engine.new_state("xpeft_hard", ["a", "b"], k=3)
    artifact = tiny_engine.save(state)
    layer_norm = 2 * 2 * 8 * 4  # ln_weight and ln_bias [L=2, b=8] in float32
    assert artifact.payload_bytes == HEADER_BYTES + hard_mask_bytes(12, 2) + layer_norm
    assert artifact.stored_bytes == artifact.payload_bytes + len(artifact.extras)
    bare = tiny_engine.save(tiny_engine.new_state("xpeft_hard", ["a", "b"], k=3, layer_norm=False))
    assert bare.payload_bytes == HEADER_BYTES + hard_mask_bytes(12, 2)


def test_artifact_for_another_pool_is_refused_and_pools_mix(tiny_backbone, tiny_pool):
    from profilekit.errors import ArtifactError
    from profilekit.pool import PoolSpec, random_pool

    engine = Engine(tiny_backbone, tiny_pool)
    blob = engine.save(engine.new_state("xpeft_hard", ["a", "b"], k=3)).to_bytes()
    other = random_pool(PoolSpec(tiny_backbone.backbone_id, 12, 2, 32, reduction_factor=4, seed=8))
    from profilekit.backbone.loader import wrap_model
    from tests.conftest import tiny_model

    second = wrap_model(tiny_model(), tiny_backbone.tokenizer, backbone_id=tiny_backbone.backbone_id)
    with pytest.raises(ArtifactError, match="does not serve"):
        Engine(second, other).load(blob)
    engine.use_pool(other)  # an engine serving both pools loads it, and serves both in one batch
    state = engine.load(blob)
    mixed = engine.new_state("xpeft_hard", ["a", "b"], k=3)
    assert mixed.pool_hash == other.pool_hash != state.pool_hash
    out = run(engine, TEXTS[:2], [state, mixed])
    alone = run(engine, TEXTS[:1], [state])
    assert torch.allclose(out.pooled[0], alone.pooled[0], atol=1e-5)


@pytest.mark.integration
def test_all_methods_at_their_defaults_mix_on_minilm(fresh_minilm):
    from profilekit.pool import PoolSpec, random_pool

    engine = Engine(fresh_minilm, random_pool(PoolSpec(fresh_minilm.backbone_id, 20, 6, 384, seed=1)))
    small_pool = {"xpeft_hard": {"k": 5}}  # every other method at its MiniLM defaults
    states = [trained_looking(engine.new_state(m, ["a", "b"], seed=i, **small_pool.get(m, {})), seed=i)
              for i, m in enumerate(METHODS)]
    states += [None]
    assert_rows_equal_single_runs(engine, (TEXTS * 2)[: len(states)], states)
