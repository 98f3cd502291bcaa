"""A warm pool (the X-PEFT paper's "x_peft warm"): N Pfeiffer adapters trained on N existing profiles,
then frozen, plus one classification head that they share.

Both steps are ordinary `train_profiles` runs on the engine: first the shared head (head_only on the
union of the N profiles' training rows, scoring every label), then one single_adapter per profile,
all N in shared batches, each against that frozen head — so an adapter is a direction that helps the
shared head for one profile. Profiles trained later on the pool learn only masks and LayerNorm
(XPeftConfig(head="shared")) or, with their own heads, start them from the shared one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from profilekit.data import ProfileData, Split, profile_seed, split_profile, validate_profile
from profilekit.engine import Engine
from profilekit.jobs import TrainConfig
from profilekit.pool import AdapterPool, PoolSpec, SharedHead
from profilekit.training.loop import Progress, train_profiles


def build_warm_pool(engine: Engine, profiles: list[ProfileData], *, reduction_factor: int = 16,
                    config: TrainConfig = TrainConfig(), adapter_lr: float = 1e-3, head_lr: float = 1e-2,
                    labels: tuple[str, ...] | None = None,
                    callback: Callable[[Progress], None] | None = None) -> AdapterPool:
    """Train one adapter per profile (N = len(profiles)) on its training split; return the frozen pool.
    The shared head scores `labels` (default: the labels the profiles use; it must include them)."""
    if len(profiles) < 1:
        raise ValueError("a warm pool needs at least one profile")
    for data in profiles:
        validate_profile(data, min_rows=config.min_rows)
    seen = {y for p in profiles for y in p.labels}
    if labels is not None and not seen <= set(labels):
        raise ValueError(f"the shared head's labels miss {sorted(seen - set(labels))}, which the profiles use")
    labels = tuple(labels) if labels is not None else tuple(sorted(seen))
    members = [replace(p, label_set=labels, split=p.split or split_profile(
        p.labels, holdout_fraction=config.holdout_fraction, seed=profile_seed(config.seed, p.key)))
        for p in profiles]

    texts, targets, train, holdout = [], [], [], []  # the union, for the shared head
    for p in members:
        offset = len(texts)
        texts += p.texts
        targets += p.labels
        train += [offset + i for i in p.split.train]
        holdout += [offset + i for i in p.split.holdout]
    union = ProfileData("warm-pool-shared-head", texts, targets, label_set=labels, split=Split(train, holdout))
    [head] = train_profiles(engine, [union], "head_only", head_lr=head_lr, callback=callback,
                            config=replace(config, batch_size=config.batch_size * 4, profiles_per_step=1))
    shared = SharedHead(head.state.head_weight.detach().cpu().clone(), head.state.head_bias.detach().cpu().clone(),
                        labels)

    results = train_profiles(engine, members, "single_adapter", config=config, callback=callback, start_head=shared,
                             freeze_head=True, reduction_factor=reduction_factor, lr=adapter_lr)
    stacked = {name: torch.stack([getattr(r.state, name).detach().cpu() for r in results], dim=1)  # [L, N, …]
               for name in ("down_w", "down_b", "up_w", "up_b")}
    spec = PoolSpec(engine.backbone.backbone_id, len(profiles), engine.backbone.num_layers,
                    engine.backbone.hidden_size, reduction_factor=reduction_factor, seed=config.seed, init_std=0.0,
                    source="warm")
    return AdapterPool(spec, **stacked, head=shared)
