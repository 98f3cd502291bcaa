"""A one-hot (k=1) hard mask with the X-PEFT LayerNorm off is exactly that pool adapter, as the
`adapters` library computes it."""

import copy

import pytest
import torch

from profilekit.engine import Engine
from tests.conftest import TEXTS


def library_model_with_pool_adapter(backbone_model, pool, index, reduction_factor):
    import adapters
    from adapters import SeqBnConfig

    model = copy.deepcopy(backbone_model)
    adapters.init(model)
    model.add_adapter("pool_adapter", config=SeqBnConfig(reduction_factor=reduction_factor))
    with torch.no_grad():
        for layer, block in enumerate(model.encoder.layer):
            adapter = block.output.adapters["pool_adapter"]
            adapter.adapter_down[0].weight.copy_(pool.down_w[layer, index].T)
            adapter.adapter_down[0].bias.copy_(pool.down_b[layer, index])
            adapter.adapter_up.weight.copy_(pool.up_w[layer, index].T)
            adapter.adapter_up.bias.copy_(pool.up_b[layer, index])
    model.set_active_adapters("pool_adapter")
    return model.eval()


def one_hot_state(engine, index):
    state = engine.new_state("xpeft_hard", ["a", "b"], k=1, layer_norm=False)
    with torch.no_grad():
        state.mask_logits.zero_()
        state.mask_logits[:, :, index] = 1.0
    return state


def check(backbone, pool, index, reduction_factor):
    pristine = copy.deepcopy(backbone.model)
    library = library_model_with_pool_adapter(pristine, pool, index, reduction_factor)
    engine = Engine(backbone, pool)
    state = one_hot_state(engine, index)
    tokens = backbone.tokenize(TEXTS)
    with torch.no_grad():
        expected = library(**tokens).last_hidden_state
        plain = pristine(**tokens).last_hidden_state
        out = engine.forward(tokens["input_ids"], tokens["attention_mask"], [state] * len(TEXTS))
    assert not torch.allclose(expected, plain, atol=1e-3), "the pool adapter must change the output"
    # float32 through every layer: the two orders of summation differ by ~1e-5 of values up to ~5 (by CPU
    # kernel), four orders of magnitude below what the adapter changes
    assert torch.allclose(out.hidden, expected, atol=1e-4, rtol=1e-4)


def test_one_hot_hard_mask_equals_adapters_library_on_tiny_bert(tiny_backbone, tiny_pool):
    check(tiny_backbone, tiny_pool, index=5, reduction_factor=4)


@pytest.mark.integration
def test_one_hot_hard_mask_equals_adapters_library_on_minilm(fresh_minilm):
    from profilekit.pool import PoolSpec, random_pool

    pool = random_pool(PoolSpec(fresh_minilm.backbone_id, 20, 6, 384, seed=1))
    check(fresh_minilm, pool, index=13, reduction_factor=16)
