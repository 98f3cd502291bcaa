from __future__ import annotations

import torch

from profilekit.methods.base import EngineContext, ProfileState
from profilekit.methods.head_only.config import HeadOnlyConfig


class HeadOnlyState(ProfileState):
    method = "head_only"
    plain_backbone = True

    def __init__(self, config: HeadOnlyConfig, ctx: EngineContext, labels, generator: torch.Generator):
        super().__init__(config, labels)
        self.init_head(ctx.hidden_size, generator)


def compose(states, ctx, *, training, generators, rows=None):
    return None  # no adapter: the row runs through the plain backbone
