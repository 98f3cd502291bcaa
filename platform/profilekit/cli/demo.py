"""`profilekit demo`: the end-to-end demo through the library alone (no server; `make run` serves the
HTTP API and runs cli/quickstart.py instead)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from profilekit.cli.common import progress_bar


def demo(args: argparse.Namespace) -> int:
    """Build a pool, train a few authors with X-PEFT hard masks (and head_only to compare), print
    their holdout accuracy, their stored bytes and a few predictions served in one mixed batch."""
    import torch

    from profilekit.backbone import load_backbone
    from profilekit.data import profiles_by_author, read_rows
    from profilekit.engine import Engine
    from profilekit.jobs import TrainConfig
    from profilekit.pool import PoolSpec, random_pool
    from profilekit.settings import get_settings
    from profilekit.training import train_profiles

    if args.max_rows < 0:
        print(f"--max-rows must be 0 (all rows) or more, got {args.max_rows}", file=sys.stderr)
        return 2
    settings = get_settings()
    torch.manual_seed(0)
    data_file = Path(args.data)
    profiles = profiles_by_author(read_rows(data_file), min_rows=args.min_rows,
                                  max_rows=args.max_rows or None)[: args.authors]
    backbone = load_backbone(settings.backbone_path, device=settings.device, dtype=settings.dtype,
                             max_length=settings.max_length)
    pool = random_pool(PoolSpec(backbone.backbone_id, args.pool_size, backbone.num_layers, backbone.hidden_size))
    engine = Engine(backbone, pool)
    print(f"backbone {backbone.backbone_id} (L={backbone.num_layers}, d={backbone.hidden_size}); "
          f"random pool N={pool.num_adapters}, b={pool.bottleneck}, hash {pool.pool_hash[:12]}… "
          f"({pool.nbytes() / 2**20:.1f} MiB in memory, 0 bytes stored: regenerated from its spec)")
    print(f"{len(profiles)} authors from {data_file.name}: " + ", ".join(f"{p.key} ({len(p.texts)})" for p in profiles))
    config = TrainConfig(epochs=args.epochs, seed=0)
    results = {}
    for method in ("head_only", "xpeft_hard"):
        bar = progress_bar(0, f"training {method}")

        def on_step(progress, bar=bar):
            bar.total = progress.total_steps
            bar.set_postfix(epoch=progress.epoch, loss=f"{progress.loss:.3f}")
            bar.update(1)

        started = time.perf_counter()
        results[method] = train_profiles(engine, profiles, method, config=config, callback=on_step)
        bar.close()
        print(f"{method}: {len(profiles)} profiles trained together in {time.perf_counter() - started:.0f} s")
    print(f"\n{'author':28} {'rows':>5} {'head_only acc':>13} {'xpeft_hard acc':>14} {'macro-F1':>8} "
          f"{'mask bytes':>10} {'stored bytes':>12}")
    for ho, xp in zip(results["head_only"], results["xpeft_hard"], strict=True):
        artifact = engine.save(xp.state)
        from profilekit.methods.xpeft.artifact import hard_mask_bytes

        print(f"{xp.key[:28]:28} {xp.n_train + xp.n_holdout:5d} {ho.accuracy:13.3f} {xp.accuracy:14.3f} "
              f"{xp.macro_f1:8.3f} {hard_mask_bytes(pool.num_adapters, backbone.num_layers):10d} "
              f"{artifact.stored_bytes:12d}")
    for method, rs in results.items():
        print(f"mean holdout accuracy {method}: {sum(r.accuracy for r in rs) / len(rs):.3f}")
    # one mixed batch: each row served with its own author's reloaded artifact, plus a plain row
    served = [engine.load(engine.save(r.state).to_bytes()) for r in results["xpeft_hard"]]
    texts = [p.texts[-1] for p in profiles[:4]] + ["A plain backbone row has no profile and no label"]
    states = served[:4] + [None]
    print("\npredictions from one mixed batch (reloaded artifacts):")
    for text, prediction, data in zip(texts, engine.predict(texts, states), profiles[:4] + [None], strict=True):
        who = data.key if data else "(no profile)"
        truth = f" (true: {data.labels[-1]})" if data else ""
        score = f"{prediction.scores[prediction.label]:.2f}" if prediction.label else "-"
        print(f"  [{who[:24]}] {text[:60]!r} → {prediction.label} p={score}{truth}")
    return 0
