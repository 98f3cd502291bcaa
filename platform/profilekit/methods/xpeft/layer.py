"""X-PEFT math: masks → weights, and weight-level aggregation of the pool (cost independent of batch)."""

from __future__ import annotations

import torch
from torch import nn

from profilekit.methods.base import AdapterWeights, EngineContext, ProfileState, log_prior
from profilekit.methods.xpeft.config import XPeftConfig


class XPeftState(ProfileState):
    """Masks (float logits while training; a served hard mask keeps its stored k-hot selection as bool,
    a quarter of the memory), the per-profile LayerNorm and, unless shared, the head; with the shared
    head and `prior`, a bias over the profile's own labels, and with `head_delta_rank` r a low-rank
    delta u·v of the shared head's rows."""

    def __init__(self, config: XPeftConfig, ctx: EngineContext, labels, generator: torch.Generator | None):
        """`generator` draws the initial masks and head; None leaves every tensor for `load` to set."""
        pool = ctx.pool
        config = config.resolved(pool.head is not None, pool.num_adapters)  # k, head='auto' and unset fields
        super().__init__(config, labels, shared_head=config.head == "shared")
        L, N, b = ctx.num_layers, pool.num_adapters, pool.bottleneck
        self.method = f"xpeft_{config.mask}"
        self.pool_hash = pool.pool_hash
        self.prior = None  # [C] over self.labels, rows `label_rows` of the shared head
        self.delta_u = self.delta_v = None  # [C, r] and [r, d]: the shared head's rows + u·v
        if self.shared_head:
            if pool.head is None:
                raise ValueError("head='shared' needs a warm pool with a shared head")
            if not config.prior:  # the paper's shared head: every label of the pool
                self.labels = tuple(pool.head.labels)
            missing = sorted(set(self.labels) - set(pool.head.labels))
            if missing:
                raise ValueError(f"the shared head does not score {missing}")
            self.register_buffer("label_rows", torch.tensor([pool.head.labels.index(y) for y in self.labels]),
                                 persistent=False)
        if generator is None:
            self.mask_logits = self.ln_weight = self.ln_bias = None
            return
        self.mask_logits = nn.Parameter(torch.randn(L, 2, N, generator=generator) * config.mask_init_std)  # [L, A/B, N]
        if config.layer_norm:
            self.ln_weight = nn.Parameter(torch.ones(L, b))
            self.ln_bias = nn.Parameter(torch.zeros(L, b))
        else:
            self.ln_weight = self.ln_bias = None
        if config.prior and self.shared_head:
            self.prior = nn.Parameter(torch.zeros(len(self.labels)))
        if config.head_delta_rank:  # as LoRA starts: u·v = 0, v random so u learns from the first step
            r = config.head_delta_rank
            self.delta_u = nn.Parameter(torch.zeros(len(self.labels), r))
            self.delta_v = nn.Parameter(torch.randn(r, ctx.hidden_size, generator=generator) * 0.02)
        if not self.shared_head:
            self.init_head(ctx.hidden_size, generator)

    def prepare(self, label_counts: dict[str, int], ctx: EngineContext) -> None:
        super().prepare(label_counts, ctx)
        if self.prior is not None:
            self.prior.data = log_prior(label_counts, self.labels).to(self.prior.device)
        if self.config.mask_init == "nearest":
            self.mask_logits.data += nearest_logits(label_counts, ctx.pool).to(self.mask_logits.device)

    def scoring_head(self, ctx: EngineContext) -> tuple[torch.Tensor, torch.Tensor]:
        if self.shared_head:
            head = ctx.pools[self.pool_hash].head
            weight, bias = head.weight[self.label_rows], head.bias[self.label_rows]  # [C, d], [C]
            if self.delta_u is not None:
                weight = weight.float() + self.delta_u @ self.delta_v  # [C, r] @ [r, d]
            return weight, bias if self.prior is None else bias + self.prior
        return super().scoring_head(ctx)

    def optimizer_groups(self) -> list[dict]:
        groups = super().optimizer_groups()
        own = [p for p in (self.prior, self.delta_u, self.delta_v) if p is not None]  # at prior_lr
        if not own:
            return groups
        groups[0]["params"] = [p for p in groups[0]["params"] if all(p is not q for q in own)]
        return groups + [{"params": own, "lr": self.config.prior_lr}]


def nearest_logits(label_counts: dict[str, int], pool) -> torch.Tensor:
    """[N] the cosine similarity of each adapter's profile's label counts to these: added to the initial
    mask logits, it starts a hard mask on the adapters of the most similar profiles."""
    if pool.builder_labels is None:
        raise ValueError("mask_init='nearest' needs a warm pool that records its profiles' labels; this pool does "
                         "not (a random or imported pool, or a warm pool saved before it recorded them)")
    mine = torch.tensor([float(label_counts.get(label, 0)) for label in pool.head.labels])
    return torch.nn.functional.cosine_similarity(pool.builder_labels.float().cpu(), mine[None], dim=1)


def khot(logits: torch.Tensor, k: int) -> torch.Tensor:
    """k-hot of the top-k logits along the last axis, divided by k (so it sums to 1)."""
    index = logits.topk(k, dim=-1).indices
    return torch.zeros_like(logits).scatter_(-1, index, 1.0) / k


def selection(logits: torch.Tensor, k: int) -> torch.Tensor:
    """The hard mask as bool: the top-k logits along the last axis (a loaded mask is its own selection)."""
    if logits.dtype == torch.bool:
        return logits
    return torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, logits.topk(k, dim=-1).indices, True)


def gumbel_topk(logits: torch.Tensor, k: int, nu: float, tau: float, noise: torch.Tensor) -> torch.Tensor:
    """Straight-through Gumbel top-k (the paper's Algorithm 1): hard forward, soft gradient.
    `noise` is uniform in (0, 1), same shape as logits."""
    gumbel = -torch.log(-torch.log(noise))
    y_soft = torch.softmax((logits + nu * gumbel) / tau, dim=-1)
    y_hard = khot(y_soft.detach(), k)
    return y_hard - y_soft.detach() + y_soft


def uniform_noise(shape, generator: torch.Generator, device, dtype) -> torch.Tensor:
    eps = torch.finfo(torch.float32).eps
    u = torch.rand(shape, generator=generator, device=generator.device)
    return u.clamp(eps, 1 - eps).to(device=device, dtype=dtype)  # strictly inside (0, 1)


def mask_weights(states: list[XPeftState], config: XPeftConfig, *, training: bool,
                 generators: list[torch.Generator] | None) -> torch.Tensor:
    """[P, L, 2, N] weights of each pool adapter for each profile."""
    if config.mask == "hard" and not training:
        return torch.stack([selection(s.mask_logits, config.k) for s in states]).float() / config.k
    logits = torch.stack([s.mask_logits for s in states])
    if logits.dtype == torch.bool:
        raise ValueError("a loaded hard mask is served, not trained; train a new state")
    if config.mask == "soft":
        return torch.softmax(logits, dim=-1)
    noise = torch.stack([uniform_noise(s.mask_logits.shape, g, logits.device, logits.dtype)
                         for s, g in zip(states, generators, strict=True)])
    return gumbel_topk(logits, config.k, config.nu, config.tau, noise)


def aggregate(weights: torch.Tensor, pool) -> AdapterWeights:
    """Weight-level aggregation: Â = Σ_i m_i A_i per profile and layer, as one batched matmul per tensor.
    weights [P, L, 2, N]; cost O(P·L·N·d·b), independent of rows and sequence length."""
    P, L, _, N = weights.shape
    d, b = pool.down_w.shape[2], pool.down_w.shape[3]
    m_down = weights[:, :, 0].transpose(0, 1)  # [L, P, N]
    m_up = weights[:, :, 1].transpose(0, 1)
    down_w = torch.bmm(m_down, pool.down_w.reshape(L, N, d * b)).reshape(L, P, d, b)
    up_w = torch.bmm(m_up, pool.up_w.reshape(L, N, b * d)).reshape(L, P, b, d)
    down_b = torch.bmm(m_down, pool.down_b)  # [L, P, b]
    up_b = torch.bmm(m_up, pool.up_b)  # [L, P, d]
    return AdapterWeights(down_w, down_b, up_w, up_b)


def compose(states: list[XPeftState], ctx: EngineContext, *, training: bool,
            generators: list[torch.Generator] | None, rows=None) -> AdapterWeights:
    config, pool_hash = states[0].config, states[0].pool_hash
    pool = ctx.pools.get(pool_hash)
    if pool is None:
        raise ValueError(f"profile trained on pool {pool_hash[:12]}…, which this engine does not serve")
    for state in states:
        if state.pool_hash != pool_hash or (state.config.mask, state.config.k) != (config.mask, config.k):
            raise ValueError("compose() takes states of one pool, mask kind and k; the engine groups them")
    weights = mask_weights(states, config, training=training, generators=generators)
    composed = aggregate(weights.to(pool.down_w.dtype), pool)
    if config.layer_norm:
        composed.ln_w = torch.stack([s.ln_weight for s in states], dim=1)  # [L, P, b]
        composed.ln_b = torch.stack([s.ln_bias for s in states], dim=1)
    return composed
