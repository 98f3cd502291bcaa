"""A warm pool: a shared head and one adapter per existing profile, trained by the one training loop,
then frozen."""

from dataclasses import replace

import pytest
import torch

from profilekit.engine import Engine
from profilekit.jobs import TrainConfig
from profilekit.pool import AdapterPool, load_pool, random_pool, save_pool
from profilekit.training import build_warm_pool, train_profiles
from profilekit.training.loop import profiles_loss
from tests.engine.test_training import profile


def assert_each_adapter_helps_its_profile(engine, pool, builders):
    """Through the shared head, adapter i alone (a one-hot mask) gives builder i a lower loss than no adapter."""
    engine.use_pool(pool)
    for index, data in enumerate(builders):
        one_hot = engine.new_state("xpeft_hard", [], k=1, layer_norm=False, head="shared", prior=False)
        with torch.no_grad():
            one_hot.mask_logits.zero_()
            one_hot.mask_logits[:, :, index] = 1.0
        plain = engine.new_state("head_only", pool.head.labels)
        plain.head_weight.data, plain.head_bias.data = pool.head.weight.clone(), pool.head.bias.clone()
        targets = [pool.head.labels.index(y) for y in data.labels]
        with torch.no_grad():
            with_adapter = profiles_loss(engine, [one_hot] * len(targets), data.texts, targets, training=False)
            without = profiles_loss(engine, [plain] * len(targets), data.texts, targets, training=False)
        assert with_adapter < without, data.key


def test_warm_pool_adapters_help_their_own_profile_through_the_shared_head(tiny_backbone, tmp_path):
    builders = [profile("w0", 8), profile("w1", 8, labels=("sports", "food"), seed=1), profile("w2", 8, seed=2)]
    config = TrainConfig(epochs=8, batch_size=4)
    engine = Engine(tiny_backbone)
    pool = build_warm_pool(engine, builders, reduction_factor=4, config=config, adapter_lr=1e-2)
    assert pool.spec.source == "warm" and pool.num_adapters == 3
    assert pool.head.labels == ("food", "politics", "sports")
    # what each adapter was trained on: its profile's training label counts over the head's labels
    assert pool.builder_labels[1].tolist()[1] == 0 and pool.builder_labels[1].sum() > 0  # w1: sports and food
    pool = load_pool(save_pool(pool, tmp_path / "warm.safetensors"))  # trained pools travel as safetensors
    assert pool.builder_labels is not None and pool.builder_labels[1, 1] == 0
    assert_each_adapter_helps_its_profile(engine, pool, builders)

    # a new profile on the warm pool trains masks and LayerNorm only, reusing the shared head
    result = train_profiles(engine, [profile("newcomer", 6, seed=5)], "xpeft_hard", config=config, k=1,
                            head="shared")[0]
    assert result.state.head_weight is None and result.n_holdout >= 1


def test_nearest_mask_init_starts_on_the_adapters_of_similar_profiles(tiny_backbone):
    builders = [profile("w0", 8), profile("w1", 8, labels=("sports", "food"), seed=1), profile("w2", 8, seed=2),
                profile("w3", 8, labels=("food", "politics"), seed=3)]
    engine = Engine(tiny_backbone)
    pool = build_warm_pool(engine, builders, reduction_factor=4, config=TrainConfig(epochs=1, batch_size=4))
    engine.use_pool(pool)
    sports_food = profile("newcomer", 6, labels=("sports", "food"), seed=5)
    [near] = train_profiles(engine, [sports_food], "xpeft_hard", config=TrainConfig(epochs=1, batch_size=4), k=1,
                            mask_init="nearest", lr=1e-6)
    # w1 wrote about exactly these labels; with k=1 every layer's mask stays on its adapter
    assert near.state.mask_logits.argmax(dim=-1).eq(1).all()

    adapters = random_pool(replace(pool.spec, source="random", init_std=0.1))
    engine.use_pool(AdapterPool(adapters.spec, adapters.down_w, adapters.down_b, adapters.up_w, adapters.up_b,
                                head=pool.head))  # random adapters record no profiles: nearest is refused by name
    with pytest.raises(ValueError, match="mask_init='nearest'"):
        train_profiles(engine, [sports_food], "xpeft_hard", config=TrainConfig(epochs=1, batch_size=4),
                       k=1, mask_init="nearest")


def test_adapters_trained_beside_a_label_prior_keep_the_shared_head(tiny_backbone):
    """adapter_prior: each builder's bias learns its label prior while the shared weight stays frozen; the
    pool keeps the shared head as fitted, and its adapters differ from ones that had to carry the prior."""
    builders = [profile("w0", 8, labels=("politics", "politics", "sports")), profile("w1", 8, labels=("sports", "food"),
                                                                                       seed=1)]
    config, engine = TrainConfig(epochs=2, batch_size=4), Engine(tiny_backbone)
    plain = build_warm_pool(engine, builders, reduction_factor=4, config=config, adapter_lr=1e-2)
    with_prior = build_warm_pool(engine, builders, reduction_factor=4, config=config, adapter_lr=1e-2,
                                 adapter_prior=True)
    assert torch.equal(with_prior.head.weight, plain.head.weight) and torch.equal(with_prior.head.bias, plain.head.bias)
    assert not torch.allclose(with_prior.up_w, plain.up_w)

    shared = plain.head
    data = profile("alice", 6, labels=("politics", "sports"))
    [result] = train_profiles(engine, [data], "single_adapter", config=config, start_head=shared,
                              freeze_head=True, head_prior=True, reduction_factor=4, head_lr=0.1)
    rows = [shared.labels.index(y) for y in result.state.labels]
    assert torch.equal(result.state.head_weight, shared.weight[rows])  # frozen
    assert not torch.allclose(result.state.head_bias, shared.bias[rows])  # its prior: started and learned


def test_refit_head_fits_the_rows_a_profile_on_the_pool_feeds_it(tiny_backbone):
    """refit_head trains the shared head further on the builders' rows through the pool's adapters (one random
    k-hot mask per builder): the adapters stay, the head (and so the pool's hash) changes, and on those composed
    rows it scores its builders better than the head fitted on the plain backbone's rows."""
    from profilekit.training.loop import PooledRows
    from profilekit.training.warm import refit_head, warm_members

    builders = [profile("w0", 8), profile("w1", 8, labels=("sports", "food"), seed=1), profile("w2", 8, seed=2)]
    config, engine = TrainConfig(epochs=6, batch_size=4), Engine(tiny_backbone)
    pool = build_warm_pool(engine, builders, reduction_factor=4, config=config, adapter_lr=3e-2)
    refit = refit_head(engine, pool, builders, k=2, layer_norm=True, config=config, head_lr=3e-2)
    assert torch.equal(refit.up_w, pool.up_w) and torch.equal(refit.builder_labels, pool.builder_labels)
    assert refit.head.labels == pool.head.labels and refit.pool_hash != pool.pool_hash
    assert not torch.allclose(refit.head.weight, pool.head.weight)

    def loss_on_composed_rows(head_pool):
        engine.use_pool(head_pool)
        through, texts, targets = {}, [], []
        for p in warm_members(builders, head_pool.head.labels, config):
            state = engine.new_state("xpeft_hard", head_pool.head.labels, seed=7, k=2, head="shared", prior=False)
            state.eval()
            through |= {t: state for t in p.texts}
            texts += p.texts
            targets += [head_pool.head.labels.index(y) for y in p.labels]
        plain = engine.new_state("head_only", head_pool.head.labels)
        plain.head_weight.data, plain.head_bias.data = head_pool.head.weight.clone(), head_pool.head.bias.clone()
        with torch.no_grad():
            return profiles_loss(engine, [plain] * len(texts), texts, targets, training=False,
                                 pooled=PooledRows(engine, through=through)).item()

    assert loss_on_composed_rows(refit) < loss_on_composed_rows(pool)

    with pytest.raises(ValueError, match="shared head"):
        refit_head(engine, random_pool(replace(pool.spec, source="random", init_std=0.1)), builders, k=2,
                   layer_norm=False, config=config)


def test_tune_pool_trains_adapters_and_head_as_masked_profiles_use_them(tiny_backbone):
    """tune_pool: the builders, each with its own hard mask and label prior, train the pool's adapters and head
    together; the result lowers the builders' loss through such masks, and leaves the engine serving nothing new."""
    from profilekit.training.warm import tune_pool

    builders = [profile("w0", 8), profile("w1", 8, labels=("sports", "food"), seed=1), profile("w2", 8, seed=2),
                profile("w3", 8, labels=("food", "politics"), seed=3)]
    config, engine = TrainConfig(epochs=2, batch_size=4), Engine(tiny_backbone)
    pool = build_warm_pool(engine, builders, reduction_factor=4, config=config, adapter_lr=1e-2)
    engine.use_pool(pool)  # served already: the copy being trained must not be mistaken for it
    served = set(engine.ctx.pools)
    tuned = tune_pool(engine, pool, builders, k=2, config=replace(config, epochs=4), lr=3e-2, head_lr=3e-2)
    assert set(engine.ctx.pools) == served and engine.pool is engine.ctx.pools[pool.pool_hash]  # as it was
    assert not torch.allclose(tuned.up_w, pool.up_w) and not torch.allclose(tuned.head.weight, pool.head.weight)
    assert tuned.head.labels == pool.head.labels and tuned.pool_hash != pool.pool_hash
    assert not tuned.up_w.requires_grad and torch.equal(tuned.builder_labels, pool.builder_labels)

    def builders_loss(adapters):  # each builder on its own k=2 mask: what tune_pool trained for
        engine.use_pool(adapters)
        results = train_profiles(engine, builders, "xpeft_hard", config=TrainConfig(epochs=1, batch_size=4), k=2,
                                 head="shared", prior=True, layer_norm=False, head_delta_rank=0, lr=1e-6,
                                 prior_lr=1e-6)
        return sum(r.holdout_loss for r in results)

    assert builders_loss(tuned) < builders_loss(pool)


def test_adapters_with_a_shared_down_projection_compose_to_the_mean_of_their_functions(tiny_backbone):
    """shared_down: every warm adapter keeps one fixed down projection and learns its up projection, so the
    adapter a k-hot mask composes is exactly the mean of the k adapters it selects — where adapters drawn
    independently average into a down projection none of them was trained with."""
    from profilekit.methods.xpeft.layer import aggregate

    builders = [profile("w0", 8), profile("w1", 8, labels=("sports", "food"), seed=1), profile("w2", 8, seed=2)]
    config, engine = TrainConfig(epochs=6, batch_size=4), Engine(tiny_backbone)
    aligned = build_warm_pool(engine, builders, reduction_factor=4, config=config, adapter_lr=3e-2, shared_down=True)
    plain = build_warm_pool(engine, builders, reduction_factor=4, config=config, adapter_lr=3e-2)
    assert all(torch.equal(aligned.down_w[:, n], aligned.down_w[:, 0]) for n in range(3))
    assert not torch.allclose(aligned.up_w[:, 0], aligned.up_w[:, 1])  # each learned its own up projection
    assert not torch.allclose(plain.down_w[:, 0], plain.down_w[:, 1])

    def adapter(w, layer, p, x):  # one layer's Pfeiffer adapter of composed weights w, profile p
        return torch.relu(x @ w.down_w[layer, p] + w.down_b[layer, p]) @ w.up_w[layer, p] + w.up_b[layer, p]

    def one_hot(n):
        weights = torch.zeros(1, aligned.spec.num_layers, 2, 3)
        weights[..., n] = 1.0
        return weights

    two = one_hot(0) / 2 + one_hot(2) / 2  # a k = 2 mask over adapters 0 and 2, as X-PEFT composes it
    x = torch.randn(5, aligned.down_w.shape[2], generator=torch.Generator().manual_seed(0))
    for pool, exact in ((aligned, True), (plain, False)):
        composed = adapter(aggregate(two, pool), 0, 0, x)
        mean = (adapter(aggregate(one_hot(0), pool), 0, 0, x) + adapter(aggregate(one_hot(2), pool), 0, 0, x)) / 2
        assert torch.allclose(composed, mean, atol=1e-6) == exact

    assert_each_adapter_helps_its_profile(engine, aligned, builders)  # as a warm adapter should
