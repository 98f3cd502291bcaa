"""One Pfeiffer adapter per profile, initialised as the `adapters` library does (`SeqBnConfig`,
init_weights="bert": weights ~ N(0, 0.02), biases zero) and applied by the engine in the same place."""

from __future__ import annotations

import torch
from torch import nn

from profilekit.methods.base import AdapterWeights, EngineContext, ProfileState
from profilekit.methods.single_adapter.config import SingleAdapterConfig


class SingleAdapterState(ProfileState):
    method = "single_adapter"

    def __init__(self, config: SingleAdapterConfig, ctx: EngineContext, labels, generator: torch.Generator):
        super().__init__(config, labels)
        L, d = ctx.num_layers, ctx.hidden_size
        b = max(1, d // config.reduction_factor)
        shared = config.shared_down_seed is not None  # one fixed down projection for all, the up one from zero
        down = torch.Generator().manual_seed(config.shared_down_seed) if shared else generator
        self.down_w = nn.Parameter(torch.randn(L, d, b, generator=down) * 0.02, requires_grad=not shared)  # [L, d, b]
        self.down_b = nn.Parameter(torch.zeros(L, b), requires_grad=not shared)
        up = torch.zeros(L, b, d) if shared else torch.randn(L, b, d, generator=generator) * 0.02
        self.up_w = nn.Parameter(up)  # [L, b, d]
        self.up_b = nn.Parameter(torch.zeros(L, d))
        self.init_head(d, generator)


def compose(states: list[SingleAdapterState], ctx: EngineContext, *, training, generators,
            rows=None) -> AdapterWeights:
    def stack(name):
        return torch.stack([getattr(s, name) for s in states], dim=1)  # [L, P, …]

    return AdapterWeights(stack("down_w"), stack("down_b"), stack("up_w"), stack("up_b"))
