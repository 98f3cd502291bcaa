"""The evaluation behind the X-PEFT defaults (docs/benchmarks.md):

    .venv/bin/python -m bench.xpeft_defaults                      # the four methods at their defaults
    .venv/bin/python -m bench.xpeft_defaults --variants '[["xpeft_hard", {"nu": 1.0}]]'

8 authors of news_authors.jsonl with 40–150 rows, 10 epochs, N=100 random pool; prints the
composed adapter's relative contribution and the mean holdout accuracy / macro-F1 per setting.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from profilekit.backbone import load_backbone
from profilekit.data import NEWS_AUTHORS, profiles_by_author, read_rows
from profilekit.engine import Engine
from profilekit.jobs import TrainConfig
from profilekit.pool import PoolSpec, random_pool
from profilekit.training import train_profiles

DEFAULT_RUNS = [["head_only", {}], ["xpeft_hard", {}], ["xpeft_soft", {}], ["single_adapter", {}]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init-std", type=float, default=0.1, help="random pool init std")
    parser.add_argument("--variants", default=json.dumps(DEFAULT_RUNS), help="JSON list of [method, overrides]")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    profiles = [p for p in profiles_by_author(read_rows(NEWS_AUTHORS), min_rows=40) if len(p.texts) <= 150][:8]
    backbone = load_backbone()
    pool = random_pool(PoolSpec(backbone.backbone_id, 100, backbone.num_layers, backbone.hidden_size,
                                init_std=args.init_std))
    engine = Engine(backbone, pool)
    tokens = backbone.tokenize(profiles[0].texts[:16])
    probe = engine.new_state("xpeft_hard", ["a", "b"])
    with torch.no_grad():
        plain = engine.forward(tokens["input_ids"], tokens["attention_mask"], [None] * 16).hidden
        adapted = engine.forward(tokens["input_ids"], tokens["attention_mask"], [probe] * 16).hidden
    print(f"authors: {[len(p.texts) for p in profiles]}")
    print(f"relative_contribution_k50: {((adapted - plain).norm() / plain.norm()).item():.4f}")
    config = TrainConfig(epochs=args.epochs, batch_size=16, profiles_per_step=8)
    for method, overrides in json.loads(args.variants):
        began = time.perf_counter()
        results = train_profiles(engine, profiles, method, config=config, **overrides)
        accuracy = sum(r.accuracy for r in results) / len(results)
        f1 = sum(r.macro_f1 for r in results) / len(results)
        name = method + "".join(f"_{k}{v}" for k, v in overrides.items())
        print(f"accuracy_{name}: {accuracy:.3f}")
        print(f"macro_f1_{name}: {f1:.3f}  ({time.perf_counter() - began:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
