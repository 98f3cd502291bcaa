"""A warm pool (the X-PEFT paper's "x_peft warm"): N Pfeiffer adapters trained with the `adapters`
library on N existing profiles, then frozen, plus one classification head that they share.

The shared head is trained first, on the plain backbone over the union of the N profiles' training
rows; each adapter is then trained against that frozen head, so an adapter is a direction that
helps the shared head for one author. Profiles trained later on this pool only learn masks and
LayerNorm (XPeftConfig(head="shared")).
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from profilekit.backbone import Backbone
from profilekit.engine.hooks import AdapterOutput
from profilekit.pool.imports import import_adapter_folders
from profilekit.pool.pool import AdapterPool, SharedHead
from profilekit.training.data import ProfileData, split_profile, validate_profile
from profilekit.training.loop import TrainConfig, profile_seed


def pristine_encoder(backbone: Backbone) -> nn.Module:
    """A copy of the backbone's encoder without any Engine wrappers."""
    model = copy.deepcopy(backbone.model)
    for layer in model.encoder.layer:
        if isinstance(layer.output, AdapterOutput):
            layer.output = layer.output.inner
    return model


def _mean_pool(model, tokens) -> torch.Tensor:
    hidden = model(**tokens).last_hidden_state
    mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)  # [B, d]


def _fit(model, backbone, head: nn.Linear, params, texts, targets, *, lr, epochs, batch_size, generator):
    optimizer = torch.optim.AdamW(params, lr=lr)
    total = epochs * -(-len(texts) // batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / max(1, total)))
    for _ in range(epochs):
        order = torch.randperm(len(texts), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            tokens = backbone.tokenize([texts[i] for i in rows])
            logits = head(_mean_pool(model, tokens).float())
            loss = F.cross_entropy(logits, torch.tensor([targets[i] for i in rows], device=logits.device))
            loss.backward()
            optimizer.step(), schedule.step(), optimizer.zero_grad()


def build_warm_pool(backbone: Backbone, profiles: list[ProfileData], *, reduction_factor: int = 16,
                    config: TrainConfig = TrainConfig(), adapter_lr: float = 1e-3, head_lr: float = 1e-2,
                    labels: tuple[str, ...] | None = None,
                    callback: Callable[[int, str], None] | None = None) -> AdapterPool:
    """Train one adapter per profile (N = len(profiles)) on its training split; return the frozen pool.
    The shared head scores `labels` (default: the labels the profiles use; it must include them)."""
    import adapters
    from adapters import SeqBnConfig

    # Between adapters (none active) the library warns on every forward; that is expected here.
    logging.getLogger("adapters.model_mixin").setLevel(logging.ERROR)

    for data in profiles:
        validate_profile(data, min_rows=config.min_rows)
    splits = [split_profile(p.labels, holdout_fraction=config.holdout_fraction,
                            seed=profile_seed(config.seed, p.key)) for p in profiles]
    seen = {y for p in profiles for y in p.labels}
    if labels is not None and not seen <= set(labels):
        raise ValueError(f"the shared head's labels miss {sorted(seen - set(labels))}, which the profiles use")
    labels = tuple(labels) if labels is not None else tuple(sorted(seen))
    model = pristine_encoder(backbone)
    generator = torch.Generator().manual_seed(config.seed)
    texts = [p.texts[i] for p, s in zip(profiles, splits, strict=True) for i in s.train]
    targets = [labels.index(p.labels[i]) for p, s in zip(profiles, splits, strict=True) for i in s.train]
    # Initial weights (head, adapters) come from the global generator, seeded here so the same authors and
    # seed give the same pool whatever ran before; the caller's generator state is restored afterwards.
    # They are drawn on the CPU (modules move to the device after creation), so only its state is forked.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        head = nn.Linear(backbone.hidden_size, len(labels)).to(backbone.device)
        model.eval()
        _fit(model, backbone, head, list(head.parameters()), texts, targets, lr=head_lr, epochs=config.epochs,
             batch_size=config.batch_size * 4, generator=generator)
        head.requires_grad_(False)
        adapters.init(model)
        with tempfile.TemporaryDirectory() as workdir:
            folders = []
            for index, (data, split) in enumerate(zip(profiles, splits, strict=True)):
                name = f"warm_{index}"
                torch.manual_seed(profile_seed(config.seed, data.key))
                model.add_adapter(name, config=SeqBnConfig(reduction_factor=reduction_factor))
                model.train_adapter(name)
                model.to(backbone.device).eval()  # no dropout: the engine serves without it
                params = [p for n, p in model.named_parameters() if f".{name}." in n]
                _fit(model, backbone, head, params, [data.texts[i] for i in split.train],
                     [labels.index(data.labels[i]) for i in split.train], lr=adapter_lr, epochs=config.epochs,
                     batch_size=config.batch_size, generator=generator)
                folders.append(Path(workdir) / name)
                model.save_adapter(str(folders[-1]), name)
                model.delete_adapter(name)
                if callback is not None:
                    callback(index + 1, data.key)
            pool = import_adapter_folders(folders, backbone_id=backbone.backbone_id, num_layers=backbone.num_layers)
    spec = replace(pool.spec, source="warm", seed=config.seed)
    shared = SharedHead(head.weight.detach().cpu().clone(), head.bias.detach().cpu().clone(), labels)
    return AdapterPool(spec, pool.down_w, pool.down_b, pool.up_w, pool.up_b, head=shared)
