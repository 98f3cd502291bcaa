"""A warm pool: a shared head and one adapter per existing profile, trained by the one training loop,
then frozen."""

import torch

from profilekit.engine import Engine
from profilekit.jobs import TrainConfig
from profilekit.pool import load_pool, save_pool
from profilekit.training import build_warm_pool, train_profiles
from profilekit.training.loop import profiles_loss
from tests.engine.test_training import profile


def test_warm_pool_adapters_help_their_own_profile_through_the_shared_head(tiny_backbone, tmp_path):
    builders = [profile("w0", 8), profile("w1", 8, labels=("sports", "food"), seed=1), profile("w2", 8, seed=2)]
    config = TrainConfig(epochs=8, batch_size=4)
    engine = Engine(tiny_backbone)
    pool = build_warm_pool(engine, builders, reduction_factor=4, config=config, adapter_lr=1e-2)
    assert pool.spec.source == "warm" and pool.num_adapters == 3
    assert pool.head.labels == ("food", "politics", "sports")
    pool = load_pool(save_pool(pool, tmp_path / "warm.safetensors"))  # trained pools travel as safetensors
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

    # a new profile on the warm pool trains masks and LayerNorm only, reusing the shared head
    result = train_profiles(engine, [profile("newcomer", 6, seed=5)], "xpeft_hard", config=config, k=1,
                            head="shared")[0]
    assert result.state.head_weight is None and result.n_holdout >= 1
