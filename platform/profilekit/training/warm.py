"""A warm pool (the X-PEFT paper's "x_peft warm"): N Pfeiffer adapters trained on N existing profiles,
then frozen, plus one classification head that they share.

Both steps are ordinary `train_profiles` runs on the engine: first the shared head (head_only on the
union of the N profiles' training rows, scoring every label), then one single_adapter per profile,
all N in shared batches, each against that frozen head — so an adapter is a direction that helps the
shared head for one profile. Profiles trained later on the pool learn only masks and LayerNorm
(XPeftConfig(head="shared")) or, with their own heads, start them from the shared one. The pool also
records what each adapter's profile wrote about (its training label counts), so that a new profile can
start its masks on the adapters of profiles like it (XPeftConfig(mask_init="nearest")).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from profilekit.data import ProfileData, Split, profile_seed, split_profile, validate_profile
from profilekit.engine import Engine
from profilekit.jobs import TrainConfig
from profilekit.pool import AdapterPool, PoolSpec, SharedHead
from profilekit.training.loop import PooledRows, Progress, train_profiles

PRIOR_LR = 0.1  # an adapter's label prior learns as fast as the byte-sized profile's (XPeftConfig.prior_lr)


def warm_members(profiles: list[ProfileData], labels: tuple[str, ...], config: TrainConfig) -> list[ProfileData]:
    """The profiles as a warm pool trains them: every one scored over `labels`, with its split fixed."""
    return [replace(p, label_set=labels, split=p.split or split_profile(
        p.labels, holdout_fraction=config.holdout_fraction, seed=profile_seed(config.seed, p.key)))
        for p in profiles]


def builder_labels(members: list[ProfileData], labels: tuple[str, ...]) -> torch.Tensor:
    """[N, C] how often each member's training rows carry each label: what its adapter was trained on."""
    counts = torch.zeros(len(members), len(labels))
    for n, p in enumerate(members):
        for row in p.split.train:
            counts[n, labels.index(p.labels[row])] += 1
    return counts


def build_warm_pool(engine: Engine, profiles: list[ProfileData], *, reduction_factor: int = 16,
                    config: TrainConfig = TrainConfig(), adapter_lr: float = 1e-3, head_lr: float = 1e-2,
                    labels: tuple[str, ...] | None = None, adapter_prior: bool = False, shared_down: bool = False,
                    callback: Callable[[Progress], None] | None = None) -> AdapterPool:
    """Train one adapter per profile (N = len(profiles)) on its training split; return the frozen pool.
    The shared head scores `labels` (default: the labels the profiles use; it must include them).
    `adapter_prior`: each adapter trains beside a label prior of its profile (the shared head's bias
    plus its log label frequencies, learned; the prior is dropped), so that an adapter holds what a
    prior cannot: the byte-sized profile on the pool learns its own prior. On the news authors it tied the
    plain pool (+0.003 over three seeds) and random adapters (N = 50: +0.004; N = 25: −0.005; docs/results/), so it
    is off by default.
    `shared_down`: every adapter keeps one down projection (drawn from the config's seed) and learns only its
    up projection, from zero, so that a k-hot mask's composed adapter is the mean of its k adapters' functions
    (SingleAdapterConfig.shared_down_seed); otherwise each adapter starts from its own random weights, as an
    adapter trained alone does."""
    if len(profiles) < 1:
        raise ValueError("a warm pool needs at least one profile")
    for data in profiles:
        validate_profile(data, min_rows=config.min_rows)
    seen = {y for p in profiles for y in p.labels}
    if labels is not None and not seen <= set(labels):
        raise ValueError(f"the shared head's labels miss {sorted(seen - set(labels))}, which the profiles use")
    labels = tuple(labels) if labels is not None else tuple(sorted(seen))
    members = warm_members(profiles, labels, config)

    shared = _fit_head(engine, members, labels, config, head_lr, callback)

    results = train_profiles(engine, members, "single_adapter", config=config, callback=callback, start_head=shared,
                             freeze_head=True, head_prior=adapter_prior, reduction_factor=reduction_factor,
                             lr=adapter_lr, head_lr=PRIOR_LR,  # only a prior's bias learns: with adapter_prior
                             shared_down_seed=config.seed if shared_down else None)
    stacked = {name: torch.stack([getattr(r.state, name).detach().cpu() for r in results], dim=1)  # [L, N, …]
               for name in ("down_w", "down_b", "up_w", "up_b")}
    spec = PoolSpec(engine.backbone.backbone_id, len(profiles), engine.backbone.num_layers,
                    engine.backbone.hidden_size, reduction_factor=reduction_factor, seed=config.seed, init_std=0.0,
                    source="warm")
    return AdapterPool(spec, **stacked, head=shared, builder_labels=builder_labels(members, labels))


def refit_head(engine: Engine, pool: AdapterPool, profiles: list[ProfileData], *, k: int, layer_norm: bool,
               config: TrainConfig = TrainConfig(), head_lr: float = 1e-2,
               callback: Callable[[Progress], None] | None = None) -> AdapterPool:
    """`pool` with its shared head trained further on the profiles' rows as a profile on the pool feeds
    them to the head: through the pool's adapters, each profile's rows under one random k-hot mask (and
    the per-profile LayerNorm at its start, with `layer_norm`). The head `build_warm_pool` fits sees the
    plain backbone's rows; warm adapters share a direction that moves every composed row away from them."""
    if pool.head is None:
        raise ValueError("refit_head needs a pool with a shared head")
    labels = pool.head.labels
    members = warm_members(profiles, labels, config)
    before = engine.pool
    engine.use_pool(pool)
    try:
        through = {}
        for p in members:
            state = engine.new_state("xpeft_hard", labels, seed=profile_seed(config.seed, p.key), k=k, head="shared",
                                     prior=False, layer_norm=layer_norm, head_delta_rank=0)
            state.eval()
            through |= {text: state for text in p.texts if text not in through}
        rows = PooledRows(engine, config.eval_batch_size, through)
        head = _fit_head(engine, members, labels, config, head_lr, callback, start=pool.head, rows=rows)
    finally:
        engine.use_pool(before)
    return AdapterPool(pool.spec, pool.down_w, pool.down_b, pool.up_w, pool.up_b, head=head,
                       builder_labels=pool.builder_labels)


def _fit_head(engine: Engine, members: list[ProfileData], labels: tuple[str, ...], config: TrainConfig,
              head_lr: float, callback, start: SharedHead | None = None, rows: PooledRows | None = None) -> SharedHead:
    """head_only on the union of the members' rows (best epoch by the union of their holdouts)."""
    texts, targets, train, holdout = [], [], [], []
    for p in members:
        offset = len(texts)
        texts += p.texts
        targets += p.labels
        train += [offset + i for i in p.split.train]
        holdout += [offset + i for i in p.split.holdout]
    union = ProfileData("warm-pool-shared-head", texts, targets, label_set=labels, split=Split(train, holdout))
    [head] = train_profiles(engine, [union], "head_only", head_lr=head_lr, callback=callback, start_head=start,
                            rows=rows, config=replace(config, batch_size=config.batch_size * 4, profiles_per_step=1))
    return SharedHead(head.state.head_weight.detach().cpu().clone(), head.state.head_bias.detach().cpu().clone(),
                      labels)


def tune_pool(engine: Engine, pool: AdapterPool, profiles: list[ProfileData], *, k: int,
              config: TrainConfig = TrainConfig(epochs=3, batch_size=4), lr: float = 1e-3, head_lr: float = 1e-3,
              callback: Callable[[Progress], None] | None = None) -> AdapterPool:
    """`pool`'s adapters and shared head trained further together, the way profiles use them: each profile
    with its own hard mask of k adapters and label prior over its own labels (what the byte-sized profile
    learns), every row's loss reaching the adapters its mask selects. Trained one per profile, an adapter
    only has to help its own profile; trained so, it is a part that helps in the compositions of many
    (Polytropon's skills). The one training loop, with the pool's tensors as `shared` parameters."""
    if pool.head is None:
        raise ValueError("tune_pool needs a pool with a shared head")
    labels, ctx = pool.head.labels, engine.ctx

    def trainable(tensor: torch.Tensor) -> torch.nn.Parameter:
        return torch.nn.Parameter(tensor.detach().to(ctx.device, ctx.dtype).clone())

    tensors = {name: trainable(getattr(pool, name)) for name in ("down_w", "down_b", "up_w", "up_b")}
    head = SharedHead(trainable(pool.head.weight), trainable(pool.head.bias), labels)
    before = engine.pool
    training = AdapterPool(pool.spec, **tensors, head=head, pool_hash=f"tuning:{pool.pool_hash}")  # not `pool`'s
    engine.use_pool(training)
    members = [replace(p, label_set=tuple(sorted(set(p.labels)))) for p in warm_members(profiles, labels, config)]
    try:
        train_profiles(engine, members, "xpeft_hard", config=config, callback=callback, k=k, head="shared",
                       prior=True, layer_norm=False, head_delta_rank=0,
                       shared=[{"params": list(tensors.values()), "lr": lr},
                               {"params": [head.weight, head.bias], "lr": head_lr}])
    finally:
        ctx.pools.pop(training.pool_hash, None)
        engine.use_pool(before)
    frozen = {name: tensor.detach().cpu().clone() for name, tensor in tensors.items()}
    return AdapterPool(pool.spec, **frozen, head=SharedHead(head.weight.detach().cpu().clone(),
                                                             head.bias.detach().cpu().clone(), labels),
                       builder_labels=pool.builder_labels)
