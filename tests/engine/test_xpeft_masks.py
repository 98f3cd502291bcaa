import torch

from profilekit.methods.xpeft.layer import aggregate, gumbel_topk, khot, uniform_noise


def test_training_masks_are_finite_even_at_extreme_noise():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 2, 100, requires_grad=True)
    noise = uniform_noise(logits.shape, g, "cpu", torch.float32)
    noise[0, 0, :3] = torch.tensor([0.0, 1.0, 1e-45]).clamp(torch.finfo(torch.float32).eps,
                                                              1 - torch.finfo(torch.float32).eps)
    y = gumbel_topk(logits, 50, nu=1.0, tau=1.0, noise=noise)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(logits.grad).all()
    assert ((noise > 0) & (noise < 1)).all()


def test_straight_through_forward_is_k_hot_and_gradient_reaches_logits():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 2, 20, requires_grad=True)
    y = gumbel_topk(logits, 5, 1.0, 1.0, uniform_noise(logits.shape, g, "cpu", torch.float32))
    assert torch.allclose(y.detach(), khot(y.detach(), 5))
    assert ((y.detach() > 0).sum(-1) == 5).all()
    (y * torch.randn_like(y)).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_inference_mask_has_exactly_k_bits_per_layer():
    m = khot(torch.randn(6, 2, 100), 50)
    assert ((m > 0).sum(-1) == 50).all()
    assert torch.allclose(m.sum(-1), torch.ones(6, 2))


def test_weight_level_aggregation_equals_summing_the_adapters(tiny_pool):
    weights = torch.softmax(torch.randn(3, 2, 2, tiny_pool.num_adapters), -1)  # [P, L, 2, N]
    composed = aggregate(weights, tiny_pool)
    for p in range(3):
        for layer in range(2):
            down = sum(weights[p, layer, 0, i] * tiny_pool.down_w[layer, i] for i in range(tiny_pool.num_adapters))
            up_b = sum(weights[p, layer, 1, i] * tiny_pool.up_b[layer, i] for i in range(tiny_pool.num_adapters))
            assert torch.allclose(composed.down_w[layer, p], down, atol=1e-6)
            assert torch.allclose(composed.up_b[layer, p], up_b, atol=1e-6)


def test_k_unset_is_half_the_pool_at_most_fifty_and_a_k_above_n_is_refused():
    import pytest

    from profilekit.errors import ConfigError
    from profilekit.methods.xpeft.config import XPeftConfig

    # the paper's 50 of N=100; a warm pool built from five profiles gets 2, not a k=50 that fails its jobs
    assert [XPeftConfig().resolved(False, n).k for n in (1, 2, 3, 5, 100, 400)] == [1, 1, 1, 2, 50, 50]
    assert XPeftConfig(k=7).resolved(True, 100).k == 7
    with pytest.raises(ConfigError, match="k=7 exceeds the pool's N=5 adapters"):
        XPeftConfig(k=7).resolved(True, 5)
    assert XPeftConfig(mask="soft", k=7).resolved(False, 5).mask == "soft"  # a soft mask weighs all N
