"""What a method hands the engine for one group of its profiles in one forward (METHODS.md §6).

`compose(states, ctx, *, training, generators, rows)` returns one of
- None: the rows run through the plain backbone (the profile's head still scores them);
- AdapterWeights: per-row Pfeiffer adapters after each layer's feed-forward block;
- Effects: any mix of adapters, a soft prompt, an update of the input word embeddings and
  per-token biases before every layer.
The engine merges the effects of every group into one forward; a row sees only its own profile's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from profilekit.methods.base import AdapterWeights


@dataclass
class GroupRows:
    """The rows of one group in this batch, for methods whose effect depends on the tokens (AoT)."""

    input_ids: torch.Tensor  # [R, S]
    attention_mask: torch.Tensor  # [R, S], 1 at the text's tokens, 0 at padding
    slot: torch.Tensor  # [R] index of the row's profile among the group's states


@dataclass
class TokenBias:
    """AoT biases of the group's rows, computed only for the (profile, token id) pairs present.

    layer_rows(l)[p, t] is the bias before layer l of profile p's t-th distinct token (computed when
    layer l runs, or gathered from the rows a hot profile keeps: then [M, d], the profiles' entries
    packed); the group's n-th real token, at (row[n], col[n]), receives the entry src[n] of those rows
    flattened to [P·T, d] (resp. [M, d]). Padding receives nothing."""

    layer_rows: Callable[[int], torch.Tensor]  # layer → [P, T, d] or [M, d]
    src: torch.Tensor  # [N] index into the flattened rows
    row: torch.Tensor  # [N] row within the group
    col: torch.Tensor  # [N] column in the tokenizer's input

    def layer(self, layer: int) -> torch.Tensor:
        """[N, d] the biases of the group's real tokens before `layer`."""
        rows = self.layer_rows(layer)
        return rows.reshape(-1, rows.shape[-1]).index_select(0, self.src)


@dataclass
class Effects:
    """Everything a group of P profiles changes in the forward; each field is optional."""

    adapters: AdapterWeights | None = None  # [L, P, …] adapters after each layer's FFN
    prompt: torch.Tensor | None = None  # [P, m, d] soft prompt, inserted right after [CLS]
    embedding_delta: torch.Tensor | None = None  # [P, S, d] added to the word embeddings of text position j
    token_bias: TokenBias | None = None  # biases before every layer (AoT)

    @property
    def changes_inputs(self) -> bool:
        """Whether the rows need the embeddings path (prompt or word-embedding update)."""
        return self.prompt is not None or self.embedding_delta is not None


def as_effects(composed) -> Effects | None:
    """Normalise what compose() returned: None, AdapterWeights (or a stand-in for them), or Effects."""
    if composed is None or isinstance(composed, Effects):
        return composed
    return Effects(adapters=composed)
