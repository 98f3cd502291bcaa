"""DePT: a short prompt plus W' = W + A·B, the low-rank update of the text's word embeddings by
position (text position j, counted from [CLS] = 0, gets row j of A·B)."""

from __future__ import annotations

import math

import torch
from torch import nn

from profilekit.errors import BatchError
from profilekit.methods.base import EngineContext, ProfileState
from profilekit.methods.dept.config import DePTConfig
from profilekit.methods.effects import Effects, GroupRows
from profilekit.methods.prompt_tuning.layer import sample_vocabulary


class DePTState(ProfileState):
    method = "dept"

    def __init__(self, config: DePTConfig, ctx: EngineContext, labels, generator: torch.Generator):
        super().__init__(config, labels)
        s, r, d = config.max_length, config.rank, ctx.hidden_size
        self.prompt = nn.Parameter(sample_vocabulary(ctx, config.prompt_length, config.init_first_id,
                                                     config.init_vocab, generator))  # [m, d]
        self.a = nn.Parameter(torch.randn(s, r, generator=generator) / math.sqrt(r))  # [s, r] Gaussian
        self.b = nn.Parameter(torch.zeros(r, d))  # [r, d] zero: A·B starts at 0
        self.init_head(d, generator)

    @property
    def prompt_tokens(self) -> int:
        return self.config.prompt_length

    def optimizer_groups(self) -> list[dict]:
        """Two learning rates (the paper's α1 for the prompt, α2 for A and B), then the head."""
        return [{"params": [self.prompt], "lr": self.config.lr},
                {"params": [self.a, self.b], "lr": self.config.low_rank_lr},
                {"params": self.head_parameters(), "lr": self.config.head_lr}]


def compose(states: list[DePTState], ctx: EngineContext, *, training, generators, rows: GroupRows) -> Effects:
    length = rows.input_ids.shape[1]
    s = states[0].config.max_length
    if length > s:
        raise BatchError(f"DePT covers s={s} text positions; this batch has texts of {length} tokens "
                         "(raise its max_length or tokenize shorter texts)")
    a = torch.stack([st.a[:length] for st in states])  # [P, S, r]
    b = torch.stack([st.b for st in states])  # [P, r, d]
    prompt = torch.stack([st.prompt for st in states])  # [P, m, d]
    return Effects(prompt=prompt, embedding_delta=a @ b)  # delta [P, S, d]
