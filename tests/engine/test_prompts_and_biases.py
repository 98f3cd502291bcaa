"""AoT P-Tuning, DePT, DPT and prompt tuning (issue #3): what their zero initialisations leave
unchanged, where prompts sit, which bias rows are computed, their sizes against the papers'
formulas, their learning rates and the errors for what they cannot run."""

import pytest
import torch

from profilekit.engine import inputs as engine_inputs
from profilekit.errors import ArtifactError, BatchError, ConfigError
from profilekit.methods import get_method
from profilekit.methods.aot import layer as aot_layer
from profilekit.methods.base import EngineContext, count
from tests.conftest import TEXTS
from tests.engine.test_mixed_batch import TINY_CONFIGS, new, run, trained_looking


def plain_hidden(engine, texts):
    tokens = engine.backbone.tokenize(texts)
    with torch.no_grad():
        return engine.backbone.model(**tokens).last_hidden_state, tokens["attention_mask"]


@pytest.mark.parametrize("method, factor", [("aot_fc", "w2"), ("aot_kron", "w_right")])
def test_zero_initialised_aot_leaves_the_backbone_unchanged(tiny_engine, method, factor):
    """FC with W2 = b1 = b2 = 0 and Kronecker with W_R = 0: every bias row is 0 whatever the other factors."""
    state = new(tiny_engine, method, ["a", "b"])
    reference, mask = plain_hidden(tiny_engine, TEXTS[:4])
    real = mask.bool()
    out = run(tiny_engine, TEXTS[:4], [state] * 4)
    assert torch.allclose(out.hidden[real], reference[real], atol=1e-6)
    with torch.no_grad():
        getattr(state, factor).normal_(0, 0.3)  # a trained-looking W2 / W_R moves the states
    moved = run(tiny_engine, TEXTS[:4], [state] * 4)
    assert not torch.allclose(moved.hidden[real], reference[real], atol=1e-3)


def test_dept_with_zero_b_equals_prompt_tuning_with_its_short_prompt(tiny_engine):
    """B = 0 makes the word-embedding update A·B vanish (whatever A is): the row is exactly vanilla prompt
    tuning with P = P_s. The prompt itself is not neutral: it is prepended, so the output differs from
    the plain backbone's."""
    dept = new(tiny_engine, "dept", ["a", "b"], seed=1)
    with torch.no_grad():
        dept.a.normal_(0, 1.0)
    prompt = tiny_engine.new_state("prompt_tuning", ["a", "b"], length=dept.prompt.shape[0])
    with torch.no_grad():
        prompt.prompt.copy_(dept.prompt)
        prompt.head_weight.copy_(dept.head_weight)
    a, b = run(tiny_engine, TEXTS[:4], [dept] * 4), run(tiny_engine, TEXTS[:4], [prompt] * 4)
    assert torch.allclose(a.hidden, b.hidden, atol=1e-6) and torch.allclose(a.logits, b.logits, atol=1e-6)
    with torch.no_grad():
        dept.b.normal_(0, 0.3)
    assert not torch.allclose(run(tiny_engine, TEXTS[:4], [dept] * 4).pooled, b.pooled, atol=1e-3)


def test_prompt_sits_after_cls_and_pooling_reads_only_the_text(tiny_engine):
    state = trained_looking(new(tiny_engine, "prompt_tuning", ["a", "b"]), 3)
    tokens = tiny_engine.backbone.tokenize(TEXTS[:2])
    word = tiny_engine.backbone.model.get_input_embeddings()(tokens["input_ids"])
    prompts = [(torch.tensor([0]), state.prompt[None])]  # row 0 has the prompt, row 1 none
    layout = engine_inputs.build_layout(word, tokens["attention_mask"], prompts, tiny_engine.max_positions)
    m = state.prompt.shape[0]
    assert torch.equal(layout.embeds[0, 0], word[0, 0])  # [CLS] first
    assert torch.equal(layout.embeds[0, 1:1 + m], state.prompt.detach())  # then the prompt
    n = int(tokens["attention_mask"][0].sum())
    assert torch.equal(layout.embeds[0, 1 + m:n + m], word[0, 1:n])  # then the rest of the text
    plain_row = word[1] * tokens["attention_mask"][1, :, None]
    assert torch.equal(layout.embeds[1, :tokens["input_ids"].shape[1]], plain_row)  # unmoved
    out = run(tiny_engine, TEXTS[:2], [state, None])
    mask = tokens["attention_mask"].unsqueeze(-1).float()
    assert out.hidden.shape[:2] == tokens["input_ids"].shape  # text columns only
    assert torch.allclose(out.pooled, (out.hidden * mask).sum(1) / mask.sum(1), atol=1e-6)


def test_batches_without_prompts_or_biases_take_the_plain_path(tiny_engine, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the embeddings path was taken")

    monkeypatch.setattr("profilekit.engine.engine.build_layout", refuse)
    states = [new(tiny_engine, m, ["a", "b"], seed=i) for i, m in enumerate(["xpeft_hard", "head_only"])]
    run(tiny_engine, TEXTS[:3], states + [None])
    aot = new(tiny_engine, "aot_fc", ["a", "b"])
    run(tiny_engine, TEXTS[:4], states + [aot, None])  # biases: hooks, but still no embeddings path
    assert all(not layer._forward_pre_hooks for layer in tiny_engine.backbone.layers())  # bias hooks removed


def test_aot_computes_bias_rows_only_for_the_tokens_present(tiny_engine):
    from profilekit.methods.effects import GroupRows

    a, b = (new(tiny_engine, "aot_fc", ["x", "y"], seed=s) for s in (1, 2))
    tokens = tiny_engine.backbone.tokenize(TEXTS[:3])
    rows = GroupRows(tokens["input_ids"], tokens["attention_mask"], torch.tensor([0, 1, 0]))  # a, b, a
    effects = aot_layer.compose([a, b], tiny_engine.ctx, training=False, generators=None, rows=rows)
    present = [set(tokens["input_ids"][r][tokens["attention_mask"][r].bool()].tolist()) for r in range(3)]
    a_tokens, b_tokens = present[0] | present[2], present[1]
    T = max(len(a_tokens), len(b_tokens))
    for layer in range(2):  # each layer computes [P, T, d] rows: T = the most distinct ids of one profile
        assert effects.token_bias.layer_rows(layer).shape == (2, T, 32)
    present = aot_layer.present_tokens(rows, 2)
    ids, counts = present.ids, present.counts
    assert counts == [len(a_tokens), len(b_tokens)]
    assert set(ids[0, :counts[0]].tolist()) == a_tokens and set(ids[1, :counts[1]].tolist()) == b_tokens
    n_real = int(tokens["attention_mask"].sum())
    assert len(present.src) == n_real  # every real token gets its row, padding none
    assert torch.equal(ids.flatten()[present.src], tokens["input_ids"][present.row, present.col])
    assert T < 40 < tiny_engine.ctx.vocab_size  # never a |V|-row table


def minilm_context() -> EngineContext:
    return EngineContext("bert:minilm-shape", num_layers=6, hidden_size=384, vocab_size=30522,
                         embeddings=torch.randn(30522, 384) * 0.05)


def test_parameter_counts_match_the_papers_formulas_at_the_minilm_defaults():
    ctx, g = minilm_context(), torch.Generator().manual_seed(0)
    L, d, V = 6, 384, 30522

    def own(method):
        spec = get_method(method)
        state = spec.state_class(spec.make_config(), ctx, ("a", "b"), g)
        return state, count(state.method_parameters())

    state, n = own("aot_fc")
    r = state.config.rank
    assert n == L * (d * r + r + r * d + d) == 76_128  # W1, b1, W2, b2 per layer
    state, n = own("aot_kron")
    a, b, r = state.w_left.shape[1], state.w_mid.shape[1], state.config.rank
    assert a * b >= V and n == L * (a * r + b * r + r * r * d) == 164_256
    state, n = own("dept")
    m, s, r = state.config.prompt_length, state.config.max_length, state.config.rank
    assert n == m * d + (s + d) * r == 7_936  # ≈ prompt tuning's l·d = 7,680 (the budget rule)
    state, n = own("dpt")
    assert n == state.config.length * state.config.bottleneck + state.config.bottleneck * d == 4_040
    state, n = own("prompt_tuning")
    assert n == state.config.length * d == 7_680


def test_xpeft_parameter_count_is_2_n_plus_b_per_layer(tiny_engine):
    state = new(tiny_engine, "xpeft_soft", ["a", "b"])
    N, b, L = tiny_engine.pool.num_adapters, tiny_engine.pool.bottleneck, 2
    assert count(state.method_parameters()) == 2 * (N + b) * L


@pytest.mark.parametrize("method", ["aot_fc", "aot_kron", "dept", "dpt", "prompt_tuning"])
def test_artifact_payload_is_the_factors_in_float32(tiny_engine, method):
    state = new(tiny_engine, method, ["a", "b"])
    artifact = tiny_engine.save(state)
    floats = count(state.method_parameters())
    assert 4 * floats <= artifact.payload_bytes <= 4 * floats + 512  # safetensors header only on top
    assert artifact.payload_bytes < 4 * tiny_engine.ctx.vocab_size * 32  # smaller than one |V|×d table


def test_prompt_init_samples_vocabulary_embeddings(tiny_engine):
    state = new(tiny_engine, "prompt_tuning", ["a", "b"])
    table = tiny_engine.ctx.embeddings
    for row in state.prompt:
        assert (table == row.to(table.device)).all(-1).any()


def test_dept_trains_prompt_and_low_rank_factors_at_their_own_rates(tiny_engine):
    from profilekit.data import profile_seed
    from profilekit.jobs import TrainConfig
    from profilekit.training import train_profiles
    from tests.engine.test_training import profile

    state = new(tiny_engine, "dept", ["a", "b"])
    groups = state.optimizer_groups()
    assert [g["lr"] for g in groups] == [state.config.lr, state.config.low_rank_lr, state.config.head_lr]
    config = TrainConfig(epochs=1, batch_size=4, patience=5)
    trained = train_profiles(tiny_engine, [profile("alice")], "dept", config=config, lr=0.05,
                             low_rank_lr=1e-9, **TINY_CONFIGS["dept"])[0].state
    start = new(tiny_engine, "dept", ["politics", "sports"], seed=profile_seed(0, "alice"))  # as it began
    assert (trained.prompt - start.prompt).abs().max() > 1e-2  # α1 = 0.05 moved the prompt
    assert (trained.b - start.b).abs().max() < 1e-6  # α2 = 1e-9 left A·B at 0


def test_inputs_the_methods_cannot_run_get_typed_errors(tiny_engine):
    long_prompt = new(tiny_engine, "prompt_tuning", ["a", "b"], length=40)
    with pytest.raises(BatchError, match="exceed the backbone's 64 positions"):
        run(tiny_engine, [TEXTS[0] * 3], [long_prompt])
    short_dept = new(tiny_engine, "dept", ["a", "b"], max_length=4)
    with pytest.raises(BatchError, match="s=4"):
        run(tiny_engine, [TEXTS[0]], [short_dept])
    tokens = tiny_engine.backbone.tokenize(TEXTS[:2])
    left = tokens["attention_mask"].flip(1)  # left padding
    with pytest.raises(BatchError, match="right-padded"):
        tiny_engine.forward(tokens["input_ids"].flip(1), left, [new(tiny_engine, "dpt", ["a", "b"])] * 2)
    with pytest.raises(ConfigError, match="a·b ≥ |V|"):
        new(tiny_engine, "aot_kron", ["a", "b"], a=10, b=10)
    with pytest.raises(ConfigError, match="activation"):
        new(tiny_engine, "aot_fc", ["a", "b"], activation="swish")
    with pytest.raises(ConfigError, match="length"):
        new(tiny_engine, "dpt", ["a", "b"], length=0)


def test_artifact_with_factors_of_another_shape_is_refused(tiny_engine):
    from profilekit.methods.base import Artifact

    small = tiny_engine.save(new(tiny_engine, "dpt", ["a", "b"], bottleneck=2))
    other = tiny_engine.save(new(tiny_engine, "dpt", ["a", "b"], bottleneck=3))
    forged = Artifact("dpt", small.payload, other.extras)  # header says k=3, factors have k=2
    with pytest.raises(ArtifactError, match="tensor u"):
        tiny_engine.load(forged.to_bytes())
    with pytest.raises(ArtifactError, match="safetensors"):
        tiny_engine.load(Artifact("dpt", b"garbage", other.extras))


def test_kronecker_rows_are_the_kronecker_product_of_factor_rows(tiny_engine):
    state = trained_looking(new(tiny_engine, "aot_kron", ["a", "b"]), 9)
    ids = torch.tensor([[0, 7, 999]])
    rows = aot_layer.kron_bias([state], ids, drop=None)  # layer → [1, 3, d]
    b = state.b_rows
    for t, x in enumerate(ids[0].tolist()):
        for layer in range(2):
            kron = torch.kron(state.w_left[layer, x // b], state.w_mid[layer, x % b])  # [r²]
            assert torch.allclose(rows(layer)[0, t], kron @ state.w_right[layer], atol=1e-5)
    assert state.w_left.shape[1] * b >= tiny_engine.ctx.vocab_size
