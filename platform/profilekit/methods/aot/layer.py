"""AoT P-Tuning math: the bias rows P_i[x] of only the tokens present, one layer at a time.

A group of P profiles with R rows: each profile's distinct token ids (padding excluded) are
gathered into ids [P, T] (T = the largest count, shorter lists padded), and the factors produce
each layer's rows [P, T, d] when that layer runs. No |V|×d table is ever formed, in training or
serving. A hot profile served from the artifact cache keeps the rows it has composed (hot.py) and
reuses them: a forward of hot profiles gathers its rows instead of composing them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from profilekit.errors import ConfigError
from profilekit.methods.aot.config import AoTFCConfig, AoTKronConfig
from profilekit.methods.aot.hot import HotRows
from profilekit.methods.base import EngineContext, ProfileState
from profilekit.methods.effects import Effects, GroupRows, TokenBias


class AoTState(ProfileState):
    """What both reparameterisations share: the composed rows kept while the profile is hot."""

    hot: HotRows | None = None

    def keep_composed(self, charge) -> None:
        """Keep composed rows from now on, each addition granted by `charge(bytes)` (the artifact cache)."""
        self.hot = HotRows(charge)

    def composed_bytes(self) -> int:
        return self.hot.nbytes if self.hot is not None else 0


class AoTFCState(AoTState):
    method = "aot_fc"

    def __init__(self, config: AoTFCConfig, ctx: EngineContext, labels, generator: torch.Generator):
        super().__init__(config, labels)
        L, d, r = ctx.num_layers, ctx.hidden_size, config.rank
        # W1 random, scaled so that E·W1 has about unit scale; W2, b1, b2 zero: P_i starts at 0
        scale = 1.0 / (math.sqrt(d) * ctx.embedding_std)
        self.w1 = nn.Parameter(torch.randn(L, d, r, generator=generator) * scale)  # [L, d, r]
        self.b1 = nn.Parameter(torch.zeros(L, r))
        self.w2 = nn.Parameter(torch.zeros(L, r, d))  # [L, r, d]
        self.b2 = nn.Parameter(torch.zeros(L, d))
        self.init_head(d, generator)


def kron_shape(config: AoTKronConfig, vocab_size: int) -> tuple[int, int]:
    """(a, b) with a·b ≥ |V|: the config's, or ⌈√|V|⌉ and ⌈|V|/a⌉."""
    a = config.a or math.ceil(math.sqrt(vocab_size))
    b = config.b or math.ceil(vocab_size / a)
    if a * b < vocab_size:
        raise ConfigError(f"Kronecker AoT needs a·b ≥ |V|: a={a}, b={b} cover {a * b} of {vocab_size} "
                          "token ids")
    return a, b


class AoTKronState(AoTState):
    method = "aot_kron"

    def __init__(self, config: AoTKronConfig, ctx: EngineContext, labels, generator: torch.Generator):
        super().__init__(config, labels)
        L, d, r = ctx.num_layers, ctx.hidden_size, config.rank
        a, b = kron_shape(config, ctx.vocab_size)
        self.b_rows = b  # row x reads W_L[x div b] and W_M[x mod b]
        # W_L, W_M random with rows of about unit norm, so kron rows have about unit norm; W_R zero
        self.w_left = nn.Parameter(torch.randn(L, a, r, generator=generator) / math.sqrt(r))  # [L, a, r]
        self.w_mid = nn.Parameter(torch.randn(L, b, r, generator=generator) / math.sqrt(r))  # [L, b, r]
        self.w_right = nn.Parameter(torch.zeros(L, r * r, d))  # [L, r², d]
        self.init_head(d, generator)


@dataclass
class PresentTokens:
    ids: torch.Tensor  # [P, T] each profile's distinct token ids, ascending, padded with 0
    counts: list[int]  # [P] how many of each profile's T entries are real
    src: torch.Tensor  # [N] per real token of the group's rows: its (profile, id) entry in [P·T]
    packed: torch.Tensor  # [N] the same entry among the profiles' ids packed without padding
    row: torch.Tensor  # [N] that token's row within the group
    col: torch.Tensor  # [N] its column


def present_tokens(rows: GroupRows, num_profiles: int) -> PresentTokens:
    """Each profile's distinct token ids among its rows' real tokens (padding excluded), and where
    every real token finds its own."""
    valid = rows.attention_mask.bool()  # [R, S]
    width = int(rows.input_ids.max()) + 1
    key = rows.slot.unsqueeze(1) * width + rows.input_ids  # [R, S], one key per (profile, token id)
    keys, inverse = torch.unique(key[valid], return_inverse=True)  # sorted, so grouped by profile
    profile, token = keys // width, keys % width
    counts = torch.bincount(profile, minlength=num_profiles)  # [P]
    within = torch.arange(len(keys), device=keys.device) - (torch.cumsum(counts, 0) - counts)[profile]
    counts_list = counts.tolist()
    T = max(counts_list)
    ids = torch.zeros(num_profiles, T, dtype=torch.long, device=keys.device)
    ids[profile, within] = token
    row, col = valid.nonzero(as_tuple=True)  # [N], in the same row-major order as key[valid]
    return PresentTokens(ids, counts_list, profile[inverse] * T + within[inverse], inverse, row, col)


def dropout_masks(counts: list[int], shape: tuple[int, int], p: float, generators, device) -> torch.Tensor:
    """[P, L, T, d] inverted-dropout masks, each profile's drawn from its own generator with the shape of
    its own tokens (so a profile's noise does not depend on the other profiles in the batch)."""
    L, d = shape
    T = max(counts)
    masks = []
    for count, generator in zip(counts, generators or [None] * len(counts), strict=True):
        where = None if generator is None else generator.device
        keep = torch.rand(L, count, d, generator=generator, device=where) >= p
        masks.append(F.pad(keep.to(device, torch.float32) / (1 - p), (0, 0, 0, T - count)))
    return torch.stack(masks)


def fc_bias(states: list[AoTFCState], ids: torch.Tensor, embeddings: torch.Tensor,
            drop: torch.Tensor | None) -> Callable[[int], torch.Tensor]:
    """P_i[x] = f(E[x]·W1_i + b1_i)·W2_i + b2_i for the ids [P, T], layer by layer as each layer asks:
    at most one layer's [P, T, d] rows exist at a time."""
    e = embeddings[ids].to(states[0].w1.dtype)  # [P, T, d] rows of the frozen E
    f = {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh}[states[0].config.activation]

    def at(layer: int) -> torch.Tensor:  # [P, T, d]
        def stack(name):
            return torch.stack([getattr(s, name)[layer] for s in states])

        x = e if drop is None else e * drop[:, layer]  # dropout on the E rows
        hidden = f(torch.baddbmm(stack("b1").unsqueeze(1), x, stack("w1")))  # [P, T, r]
        return torch.baddbmm(stack("b2").unsqueeze(1), hidden, stack("w2"))  # [P, T, d]

    return at


def kron_bias(states: list[AoTKronState], ids: torch.Tensor,
              drop: torch.Tensor | None) -> Callable[[int], torch.Tensor]:
    """P_i[x] = kron(W_L[x div b], W_M[x mod b])·W_R for the ids [P, T], layer by layer as each layer
    asks (times its dropout mask when training)."""
    b = states[0].b_rows
    high, low = ids // b, ids % b  # [P, T]

    def at(layer: int) -> torch.Tensor:  # [P, T, d]
        def rows_of(name, index):  # [P, n, r] gathered at index [P, T] → [P, T, r]
            table = torch.stack([getattr(s, name)[layer] for s in states])
            return torch.gather(table, 1, index.unsqueeze(-1).expand(-1, -1, table.shape[-1]))

        left, mid = rows_of("w_left", high), rows_of("w_mid", low)
        kron = (left.unsqueeze(-1) * mid.unsqueeze(-2)).flatten(2)  # [P, T, r²]
        rows = kron @ torch.stack([s.w_right[layer] for s in states])  # [P, T, r²] @ [P, r², d]
        return rows if drop is None else rows * drop[:, layer]  # dropout on the bias rows P_x

    return at


def bias_of(states, ids: torch.Tensor, ctx: EngineContext, drop) -> Callable[[int], torch.Tensor]:
    if isinstance(states[0].config, AoTFCConfig):
        return fc_bias(states, ids, ctx.embeddings, drop)
    return kron_bias(states, ids, drop)


def hot_bias(states: list[AoTState], present: PresentTokens, ctx: EngineContext) -> TokenBias:
    """Serving profiles that keep their rows: each profile's rows of its present ids gathered from what
    it keeps; a profile missing some composes its present ids afresh (all layers) and keeps them."""
    ids = [present.ids[p, :n] for p, n in enumerate(present.counts)]
    chunks = [state.hot.lookup(mine) for state, mine in zip(states, ids, strict=True)]  # [L, T_p, d] or None
    missing = [p for p, chunk in enumerate(chunks) if chunk is None]
    if missing:
        at = bias_of([states[p] for p in missing], present.ids[missing], ctx, None)
        fresh = torch.stack([at(layer) for layer in range(ctx.num_layers)])  # [L, P', T, d]
        for j, p in enumerate(missing):
            chunks[p] = fresh[:, j, :present.counts[p]]
            states[p].hot.keep(ids[p], chunks[p])
    table = torch.cat(chunks, 1)  # [L, Σ T_p, d]: profile by profile, ids ascending, as present.packed counts
    return TokenBias(lambda layer: table[layer], present.packed, present.row, present.col)


def compose(states, ctx: EngineContext, *, training: bool, generators, rows: GroupRows) -> Effects:
    config = states[0].config
    present = present_tokens(rows, len(states))
    if not training and all(state.hot is not None for state in states):
        return Effects(token_bias=hot_bias(states, present, ctx))
    drop = None
    if training and config.dropout > 0:
        shape = (ctx.num_layers, ctx.hidden_size)
        drop = dropout_masks(present.counts, shape, config.dropout, generators, present.ids.device)
    layer_rows = bias_of(states, present.ids, ctx, drop)
    return Effects(token_bias=TokenBias(layer_rows, present.src, present.row, present.col))
