"""Where per-row effects attach to the backbone.

Token biases (AoT) are added to a layer's input hidden states by a forward pre-hook, installed only
for a forward that has them. Adapters attach to the output block of each transformer layer:

Pfeiffer placement, as the `adapters` library's SeqBnConfig computes it in BertOutput/RobertaOutput:
    h = dropout(dense(intermediate))           # FFN output before its residual
    x = LN(h + attn)                            # what the plain layer returns
    a = up(ReLU([LN_p](down(x))))               # the row's adapter (LN_p: X-PEFT's per-profile LayerNorm)
    out = LN(a + h + attn)                      # the same pretrained LN, applied again
Rows without an adapter return x unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from profilekit.methods.base import AdapterWeights
from profilekit.methods.effects import TokenBias


@dataclass
class AdapterGroup:
    """Rows that share one composed set of adapters (one method and config): row i uses slot[i]."""

    rows: torch.Tensor  # [R] batch row indices
    slot: torch.Tensor | None  # [R] index into the weights' profile axis; None: row i uses profile i
    weights: AdapterWeights  # tensors [L, P, …]


def _rows(tensor: torch.Tensor, slot: torch.Tensor | None, dtype) -> torch.Tensor:
    """One layer's [P, …] block, gathered per row unless rows and profiles already line up."""
    return (tensor if slot is None else tensor[slot]).to(dtype)


def apply_adapter(x: torch.Tensor, residual: torch.Tensor, w: AdapterWeights, slot: torch.Tensor | None,
                  layer: int, layer_norm: nn.Module) -> torch.Tensor:
    """x, residual [R, S, d] → LN(up(ReLU([LN_p](down(x)))) + residual) with each row's own adapter."""
    dtype = x.dtype
    down = torch.baddbmm(_rows(w.down_b[layer], slot, dtype).unsqueeze(1), x, _rows(w.down_w[layer], slot, dtype))
    if w.ln_w is not None:  # down: [R, S, b]
        down = F.layer_norm(down, down.shape[-1:]) * _rows(w.ln_w[layer], slot, dtype).unsqueeze(1) \
            + _rows(w.ln_b[layer], slot, dtype).unsqueeze(1)
    up = torch.baddbmm(_rows(w.up_b[layer], slot, dtype).unsqueeze(1), F.relu(down), _rows(w.up_w[layer], slot, dtype))
    return layer_norm(up + residual)  # [R, S, d]


class AdapterOutput(nn.Module):
    """Replaces a layer's `output` module; reads the engine's active adapter groups for this forward."""

    def __init__(self, inner: nn.Module, layer_index: int, source):
        super().__init__()
        self.inner = inner  # the original BertOutput: dense, dropout, LayerNorm
        self.layer_index = layer_index
        self._source = [source]  # a list so the engine is not registered as a submodule

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        inner = self.inner
        h = inner.dropout(inner.dense(hidden_states))  # [B, S, d] FFN output before its residual
        residual = h + input_tensor
        x = inner.LayerNorm(residual)  # the plain layer's output
        groups: list[AdapterGroup] = self._source[0].active
        if not groups:
            return x
        if len(groups) == 1 and groups[0].rows.numel() == x.shape[0]:  # every row, in order: no gather
            g = groups[0]
            return apply_adapter(x, residual, g.weights, g.slot, self.layer_index, inner.LayerNorm)
        rows = torch.cat([g.rows for g in groups])
        outs = [apply_adapter(x[g.rows], residual[g.rows], g.weights, g.slot, self.layer_index, inner.LayerNorm)
                for g in groups]
        return x.index_put((rows,), torch.cat(outs))


class TokenBiasHook:
    """Forward pre-hook of layer i: adds each AoT group's bias to its rows' real tokens, hidden [B, S', d].
    Biases address the tokenizer's columns; AoT rows carry no prompt, so these are their columns here."""

    def __init__(self, layer_index: int, groups: list[tuple[torch.Tensor, TokenBias]]):
        self.layer_index = layer_index
        self.groups = groups  # (batch rows [R], bias) per group

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict):
        hidden = args[0] if args else kwargs["hidden_states"]
        B, width, d = hidden.shape
        in_place = not torch.is_grad_enabled() and hidden.is_contiguous()  # serving: a fresh activation
        flat = hidden.view(B * width, d) if in_place else hidden.reshape(B * width, d)
        for rows, bias in self.groups:
            at = rows[bias.row] * width + bias.col  # [N] flat positions of the group's real tokens
            values = bias.layer(self.layer_index).to(hidden.dtype)  # [N, d]
            flat = flat.index_add_(0, at, values) if in_place else flat.index_add(0, at, values)
        hidden = flat.view(B, width, d)
        if args:
            return (hidden, *args[1:]), kwargs
        return args, kwargs | {"hidden_states": hidden}


def install_token_biases(layers: list[nn.Module], groups: list[tuple[torch.Tensor, TokenBias]]) -> list:
    """Register the pre-hooks for one forward; the caller removes the returned handles afterwards."""
    return [layer.register_forward_pre_hook(TokenBiasHook(i, groups), with_kwargs=True)
            for i, layer in enumerate(layers)]
