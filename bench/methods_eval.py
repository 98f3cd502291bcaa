"""Holdout accuracy of each method on a few news authors (issue #3): `python -m bench.methods_eval`.

Every method trains the same authors with the same split, seed and budget on the packaged MiniLM
(all authors of a method trained together in shared batches), and prints `name: value` lines and a
markdown table: mean holdout accuracy and macro-F1 over the authors, trainable parameters per
profile (head included) and payload bytes of one artifact.
`--set dept.lr=0.01` overrides a config field of one method (repeatable) to compare settings.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import report
from profilekit.backbone import load_backbone
from profilekit.data import NEWS_AUTHORS, profiles_by_author, read_rows
from profilekit.engine import Engine
from profilekit.jobs import TrainConfig
from profilekit.methods import method_names, parse_overrides
from profilekit.pool import PoolSpec, random_pool
from profilekit.training import train_profiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--authors", type=int, default=6)
    parser.add_argument("--min-rows", type=int, default=40)
    parser.add_argument("--max-rows", type=int, default=80)
    parser.add_argument("--epochs", type=int, default=10, help="TrainConfig's default")
    parser.add_argument("--batch-size", type=int, default=8, help="rows of one profile per step")
    parser.add_argument("--seed", type=int, default=0, help="seeds the splits, initialisations and noise")
    parser.add_argument("--methods", default=",".join(method_names()), help="default: every registered method")
    parser.add_argument("--set", action="append", default=[], help="method.field=value")
    args = parser.parse_args()
    torch.manual_seed(0)
    profiles = [p for p in profiles_by_author(read_rows(NEWS_AUTHORS), min_rows=args.min_rows)
                if len(p.texts) <= args.max_rows][: args.authors]
    backbone = load_backbone()
    engine = Engine(backbone, random_pool(PoolSpec(backbone.backbone_id, 100, backbone.num_layers,
                                                   backbone.hidden_size)))
    report("authors", len(profiles))
    report("rows", sum(len(p.texts) for p in profiles))
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    extra = parse_overrides(args.set)
    table = []
    for method in args.methods.split(","):
        began = time.perf_counter()
        results = train_profiles(engine, profiles, method, config=config, **extra.get(method, {}))
        seconds = time.perf_counter() - began
        acc = sum(r.accuracy for r in results) / len(results)
        f1 = sum(r.macro_f1 for r in results) / len(results)
        report(f"accuracy_{method}", acc)
        report(f"macro_f1_{method}", f1)
        report(f"train_seconds_{method}", seconds)
        payload = engine.save(results[0].state).payload_bytes
        accs = [r.accuracy for r in results]
        table.append((method, acc, f1, results[0].trainable_params, payload, accs, seconds))
    base = next((row[1] for row in table if row[0] == "head_only"), None)
    print("\n| method | mean acc | vs head_only | macro-F1 | params/profile | payload bytes | per author "
          "| s |")
    print("|---|---|---|---|---|---|---|---|")
    for method, acc, f1, params, payload, accs, seconds in table:
        delta = f"{acc - base:+.3f}" if base is not None else "-"
        print(f"| {method} | {acc:.3f} | {delta} | {f1:.3f} | {params:,} | {payload:,} | "
              f"{' '.join(f'{a:.2f}' for a in accs)} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
