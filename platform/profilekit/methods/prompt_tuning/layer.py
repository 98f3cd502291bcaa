"""Vanilla prompt tuning: one soft prompt per profile; the engine inserts it after [CLS]."""

from __future__ import annotations

import torch
from torch import nn

from profilekit.methods.base import EngineContext, ProfileState
from profilekit.methods.effects import Effects
from profilekit.methods.prompt_tuning.config import PromptTuningConfig


def sample_vocabulary(ctx: EngineContext, n: int, first_id: int, count: int,
                      generator: torch.Generator) -> torch.Tensor:
    """[n, d] float32 copies of the word embeddings of n ids drawn from [first_id, first_id + count),
    clipped to the vocabulary (the whole vocabulary when first_id lies beyond it)."""
    vocab = ctx.vocab_size
    low = first_id if first_id < vocab else 0
    high = min(vocab, low + count)
    ids = torch.randint(low, high, (n,), generator=generator)
    return ctx.embeddings[ids.to(ctx.embeddings.device)].detach().to("cpu", torch.float32).clone()


class PromptTuningState(ProfileState):
    method = "prompt_tuning"

    def __init__(self, config: PromptTuningConfig, ctx: EngineContext, labels, generator: torch.Generator):
        super().__init__(config, labels)
        initial = sample_vocabulary(ctx, config.length, config.init_first_id, config.init_vocab, generator)
        self.prompt = nn.Parameter(initial)  # [l, d]
        self.init_head(ctx.hidden_size, generator)

    @property
    def prompt_tokens(self) -> int:
        return self.config.length


def compose(states: list[PromptTuningState], ctx: EngineContext, *, training, generators,
            rows=None) -> Effects:
    return Effects(prompt=torch.stack([s.prompt for s in states]))  # [P, l, d]
