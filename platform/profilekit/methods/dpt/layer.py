"""DPT: the prompt is the product of two small factors, composed per forward (P = U·V)."""

from __future__ import annotations

import math

import torch
from torch import nn

from profilekit.methods.base import EngineContext, ProfileState
from profilekit.methods.dpt.config import DPTConfig
from profilekit.methods.effects import Effects


class DPTState(ProfileState):
    method = "dpt"

    def __init__(self, config: DPTConfig, ctx: EngineContext, labels, generator: torch.Generator):
        super().__init__(config, labels)
        k, d = config.bottleneck, ctx.hidden_size
        std = config.init_std or ctx.embedding_std
        # U ~ N(0, 1), V ~ N(0, std/√k): the entries of U·V start with the chosen std
        self.u = nn.Parameter(torch.randn(config.length, k, generator=generator))  # [l, k]
        self.v = nn.Parameter(torch.randn(k, d, generator=generator) * std / math.sqrt(k))  # [k, d]
        self.init_head(d, generator)

    @property
    def prompt_tokens(self) -> int:
        return self.config.length


def compose(states: list[DPTState], ctx: EngineContext, *, training, generators, rows=None) -> Effects:
    u, v = torch.stack([s.u for s in states]), torch.stack([s.v for s in states])  # [P, l, k], [P, k, d]
    return Effects(prompt=u @ v)  # [P, l, d]
