import pytest
import torch

from profilekit.data import ProfileData, split_profile
from profilekit.errors import TrainingDataError
from profilekit.jobs import TrainConfig
from profilekit.methods import get_method, method_names
from profilekit.training import train_profiles
from profilekit.training.loop import profiles_loss

WORDS = {"politics": "senate vote election bill president", "sports": "goal match team striker final",
         "food": "recipe dinner bake soup kitchen"}


def profile(key, n_per_label=6, labels=("politics", "sports"), seed=0):
    g = torch.Generator().manual_seed(seed)
    texts, ys = [], []
    for label in labels:
        words = WORDS[label].split()
        for i in range(n_per_label):
            pick = torch.randint(len(words), (4,), generator=g).tolist()
            texts.append(" ".join(words[j] for j in pick) + f" story {i}")
            ys.append(label)
    return ProfileData(key, texts, ys)


FAST = TrainConfig(epochs=3, batch_size=4, patience=5, min_rows=3)  # small synthetic profiles


def test_split_is_stratified_seeded_and_keeps_a_holdout():
    labels = ["a"] * 10 + ["b"] * 7 + ["c"]
    split = split_profile(labels, seed=3)
    assert split == split_profile(labels, seed=3)
    held = [labels[i] for i in split.holdout]
    assert held.count("a") == 3 and held.count("b") == 2 and "c" not in held
    assert sorted(split.train + split.holdout) == list(range(len(labels)))
    tiny = split_profile(["a", "b", "b"], seed=0)
    assert len(tiny.holdout) == 1


@pytest.mark.parametrize("data, message", [
    (ProfileData("p", ["one", "two"], ["a", "b"]), "at least 3"),
    (ProfileData("p", ["one", "two", "three"], ["a", "a", "a"]), "single label"),
    (ProfileData("p", ["one", "  ", "three"], ["a", "b", "a"]), "row 1 has an empty text"),
    (ProfileData("p", ["one", "two", "three"], ["a", "b", "z"], label_set=("a", "b")), "row 2 has label 'z'"),
])
def test_bad_training_data_is_refused_before_training(tiny_engine, data, message):
    with pytest.raises(TrainingDataError, match=message):
        train_profiles(tiny_engine, [profile("good"), data], "head_only", config=FAST)


def test_the_default_minimum_is_the_one_of_uploads_and_onboarding(tiny_engine):
    from profilekit.data import MIN_ROWS

    assert TrainConfig().min_rows == MIN_ROWS
    with pytest.raises(TrainingDataError, match=f"at least {MIN_ROWS}"):
        train_profiles(tiny_engine, [profile("small", n_per_label=MIN_ROWS // 2 - 1)], "head_only",
                       config=TrainConfig(epochs=1))


def test_many_profiles_in_one_step_get_the_gradients_of_separate_runs(tiny_engine):
    a = tiny_engine.new_state("xpeft_soft", ["politics", "sports"], seed=1)
    b = tiny_engine.new_state("single_adapter", ["sports", "food"], seed=2)
    rows_a, rows_b = profile("a"), profile("b", labels=("sports", "food"))
    texts = rows_a.texts[:3] + rows_b.texts[:2]
    targets = [a.labels.index(y) for y in rows_a.labels[:3]] + [b.labels.index(y) for y in rows_b.labels[:2]]
    profiles_loss(tiny_engine, [a] * 3 + [b] * 2, texts, targets, training=True).backward()
    joint = {id(p): p.grad.clone() for p in list(a.parameters()) + list(b.parameters())}
    for state in (a, b):
        state.zero_grad(set_to_none=True)
    profiles_loss(tiny_engine, [a] * 3, texts[:3], targets[:3], training=True).backward()
    profiles_loss(tiny_engine, [b] * 2, texts[3:], targets[3:], training=True).backward()
    for p in list(a.parameters()) + list(b.parameters()):
        assert torch.allclose(joint[id(p)], p.grad, atol=1e-6)
        assert p.grad.abs().sum() > 0


@pytest.mark.parametrize("method", method_names())
def test_training_profiles_together_equals_training_them_alone(tiny_backbone, tiny_pool, method):
    """Also covers training noise drawn per profile (Gumbel for hard masks, dropout for AoT) and
    DePT's three parameter groups."""
    from profilekit.engine import Engine

    engine = Engine(tiny_backbone, tiny_pool)
    extra = get_method(method).tiny | ({"nu": 1.0} if method == "xpeft_hard" else {})  # Gumbel noise too
    data = [profile("alice", 6), profile("bob", 4, labels=("sports", "food"), seed=1), profile("carol", 9, seed=2)]
    together = train_profiles(engine, data, method, config=FAST, **extra)
    for result in together:
        alone = train_profiles(engine, [d for d in data if d.key == result.key], method, config=FAST, **extra)[0]
        for (name, p), q in zip(result.state.named_parameters(), alone.state.parameters()):
            assert torch.allclose(p, q, atol=2e-5), (result.key, name)
        assert result.accuracy == alone.accuracy


def test_training_is_deterministic_and_reports_progress(tiny_engine):
    events = []
    first = train_profiles(tiny_engine, [profile("alice")], "xpeft_hard", config=FAST, k=3, callback=events.append)
    second = train_profiles(tiny_engine, [profile("alice")], "xpeft_hard", config=FAST, k=3)
    assert torch.equal(first[0].state.mask_logits, second[0].state.mask_logits)
    assert [e.step for e in events] == list(range(1, len(events) + 1))
    assert {e.epoch for e in events} == {1, 2, 3} and all(e.loss > 0 for e in events)
    assert events[-1].step <= events[-1].total_steps


def test_training_learns_a_separable_profile(tiny_engine):
    config = TrainConfig(epochs=15, batch_size=4, patience=15)
    result = train_profiles(tiny_engine, [profile("alice", 12)], "xpeft_hard", config=config, k=3, lr=5e-2,
                            head_lr=5e-2)[0]
    assert result.accuracy >= 0.8
    assert result.n_train + result.n_holdout == 24 and result.n_holdout >= 1
    assert result.trainable_params == 2 * (12 + 8) * 2 + 2 * 32 + 2  # 2(N+b)L + head


def test_early_stopping_keeps_the_best_epoch(tiny_engine):
    config = TrainConfig(epochs=30, batch_size=4, patience=2)
    result = train_profiles(tiny_engine, [profile("alice")], "head_only", config=config, lr=1.0, head_lr=1.0)[0]
    assert result.epochs_run < 30 and result.epochs_run - result.best_epoch == 2


def test_shared_head_profiles_store_no_head(tiny_backbone, tiny_pool):
    """The paper's shared head (prior=False): every label of the pool, masks and LayerNorm only."""
    from profilekit.engine import Engine
    from profilekit.pool import AdapterPool, SharedHead

    head = SharedHead(torch.randn(3, 32), torch.zeros(3), ("food", "politics", "sports"))
    warm = AdapterPool(tiny_pool.spec, tiny_pool.down_w, tiny_pool.down_b, tiny_pool.up_w, tiny_pool.up_b, head=head)
    engine = Engine(tiny_backbone, warm)
    result = train_profiles(engine, [profile("alice")], "xpeft_hard", config=FAST, k=3, head="shared",
                            prior=False)[0]
    assert result.state.head_weight is None and result.state.labels == head.labels
    assert torch.equal(engine.pool.head.weight, head.weight)  # the shared head is not trained
    per_profile = engine.save(engine.new_state("xpeft_hard", ["food", "politics", "sports"], k=3, head="profile"))
    shared = engine.save(result.state)
    # one bit per label of the shared head says which it scores; no head, no extras
    assert len(shared.payload) == len(per_profile.payload) + 1 and shared.extras == b""
    assert result.trainable_params == 2 * (12 + 8) * 2


def warm_engine(tiny_backbone, tiny_pool, labels=("food", "politics", "sports", "travel")):
    from profilekit.engine import Engine
    from profilekit.pool import AdapterPool, SharedHead

    head = SharedHead(torch.randn(len(labels), 32, generator=torch.Generator().manual_seed(3)),
                      torch.linspace(-1, 1, len(labels)), labels)
    warm = AdapterPool(tiny_pool.spec, tiny_pool.down_w, tiny_pool.down_b, tiny_pool.up_w, tiny_pool.up_b, head=head)
    return Engine(tiny_backbone, warm), head


def test_a_label_prior_on_the_shared_head_scores_only_the_profiles_labels(tiny_backbone, tiny_pool):
    from profilekit.methods.xpeft.artifact import HEADER_BYTES, hard_mask_bytes

    engine, head = warm_engine(tiny_backbone, tiny_pool)
    data = profile("alice", 6, labels=("politics", "sports"))
    result = train_profiles(engine, [data], "xpeft_hard", config=FAST, k=3, head="shared", prior=True,
                            layer_norm=False)[0]
    state = result.state
    assert state.labels == ("politics", "sports") and state.head_weight is None
    assert result.trainable_params == 2 * 12 * 2 + 2  # masks and two prior entries
    assert torch.equal(engine.pool.head.weight, head.weight)  # the shared head is not trained
    served = engine.load(engine.save(state).to_bytes())
    texts = data.texts[:4]
    labels = [p.label for p in engine.predict(texts, [served] * 4)]
    assert labels == [p.label for p in engine.predict(texts, [state] * 4)] and set(labels) <= {"politics", "sports"}
    artifact = engine.save(state)  # header, masks, one byte of scored labels, two float32: no extras
    assert artifact.stored_bytes == HEADER_BYTES + hard_mask_bytes(12, 2) + 1 + 2 * 4 and artifact.extras == b""


def test_an_own_head_can_start_from_the_shared_head_and_the_label_frequencies(tiny_backbone, tiny_pool):
    from collections import Counter

    from profilekit.methods.base import log_prior

    engine, head = warm_engine(tiny_backbone, tiny_pool)
    counts = Counter({"politics": 5, "travel": 1})
    for method, extra in (("xpeft_hard", {"k": 3, "head": "profile"}), ("head_only", {})):
        state = engine.new_state(method, ("politics", "travel"), head_init="shared", **extra)
        state.prepare(counts, engine.ctx)
        assert torch.equal(state.head_weight.detach(), head.weight[[1, 3]])
        expected = head.bias[[1, 3]] + torch.log(torch.tensor([6 / 8, 2 / 8]))  # (count + 1) / (n + C)
        assert torch.allclose(state.head_bias.detach(), expected) and state.head_bias.requires_grad
        assert torch.allclose(log_prior(counts, ("politics", "travel")), torch.log(torch.tensor([0.75, 0.25])))
    auto = engine.new_state("xpeft_hard", ("politics", "travel"), k=3, head="profile")  # head_init auto: shared
    auto.prepare(counts, engine.ctx)
    assert torch.equal(auto.head_weight.detach(), head.weight[[1, 3]])
    state = engine.new_state("head_only", ("politics", "travel"), head_init="shared")
    engine.use_pool(tiny_pool)  # a random pool has no shared head to start from
    auto = engine.new_state("head_only", ("politics", "travel"))
    before = auto.head_weight.detach().clone()
    auto.prepare(counts, engine.ctx)  # auto on a random pool: the random start is kept
    assert torch.equal(auto.head_weight.detach(), before)
    with pytest.raises(ValueError, match="needs an engine whose pool has a shared head"):
        state.prepare(counts, engine.ctx)
