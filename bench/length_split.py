"""Rows of similar length (issue #15): `.venv/bin/python -m bench.length_split` from the repository root.

Serving cuts a batch into sub-batches of similar text length, one forward each padded to its own longest
row (`Engine.forward_grouped`, `engine/inputs.split_by_length`, priced with the setting
`length_split_overhead`). This measures what that is worth on the configured device and dtype, in one
run, alternating every side so that machine noise hits all alike:
- backbone_rows_per_second: the plain backbone, each batch of `--rows` random news texts in one
  forward padded to its longest row (what a user of the bare encoder runs; `bench.api`'s baseline);
- backbone_split_rows_per_second: the plain backbone on the same batches cut as serving cuts them at
  the default overhead (what the cut alone is worth, without any profile);
- engine_rows_per_second_overhead_<P>: Engine.predict (tokenize, compose, forward, scores) on the same
  batches with `--rows` distinct X-PEFT hard profiles (k=50, random pool of 100), at overhead P;
  `never` = one forward per batch (no cut by length);
- ratio_*: each over backbone_rows_per_second; useful_position_share_*: text tokens over the positions
  the forwards process (1.0 = no padding).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from bench.common import configured_backbone, news_texts, plain_forward, report
from profilekit.engine import Engine
from profilekit.engine.engine import SPLIT_OVERHEAD
from profilekit.engine.inputs import split_by_length
from profilekit.pool import PoolSpec, random_pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64, help="rows per batch (the batcher's max_batch_size)")
    parser.add_argument("--batches", type=int, default=8, help="distinct random batches, each timed per round")
    parser.add_argument("--texts", type=int, default=256, help="news texts the batches are drawn from")
    parser.add_argument("--overheads", default=f"never,32,{SPLIT_OVERHEAD},512")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    overheads = [None if o == "never" else int(o) for o in args.overheads.split(",")]  # None: never cut
    texts = news_texts(args.texts)
    rng = random.Random(0)
    batches = [rng.sample(texts, args.rows) for _ in range(args.batches)]
    backbone = configured_backbone()
    engine = Engine(backbone, random_pool(PoolSpec(backbone.backbone_id, 100, backbone.num_layers,
                                                   backbone.hidden_size)))
    labels = ["a", "b", "c", "d", "e"]
    states = [engine.new_state("xpeft_hard", labels, seed=i, k=50) for i in range(args.rows)]

    @torch.inference_mode()
    def backbone_run(overhead: int | None) -> None:
        for batch in batches:
            plain_forward(backbone, batch, overhead)

    def engine_run(overhead: int | None) -> None:
        engine.split_overhead = overhead
        for batch in batches:
            engine.predict(batch, states)

    sides = {"backbone": lambda: backbone_run(None), "backbone_split": lambda: backbone_run(SPLIT_OVERHEAD)}
    sides |= {f"engine_overhead_{'never' if o is None else o}": (lambda o=o: engine_run(o)) for o in overheads}
    for run in sides.values():  # warm-up
        run()
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, run in sides.items():
            began = time.perf_counter()
            run()
            if backbone.device.type == "cuda":
                torch.cuda.synchronize()
            rates[name].append(args.rows * args.batches / (time.perf_counter() - began))
    report("device", f"{backbone.device} {backbone.dtype}")
    report("rows_per_batch", args.rows)
    for name, values in rates.items():
        label = name.replace("engine_overhead", "engine_rows_per_second_overhead") if name.startswith("engine") \
            else f"{name}_rows_per_second"
        report(label, statistics.median(values))
        if name != "backbone":  # per round, each over the same round's plain backbone
            report(f"ratio_{name}", statistics.median(v / b for v, b in zip(values, rates["backbone"], strict=True)))
    lengths = [backbone.tokenize(batch)["attention_mask"].sum(1).tolist() for batch in batches]
    for overhead in overheads:
        padded = sum(len(part) * max(ls[r] for r in part) for ls in lengths for part in split_by_length(ls, overhead))
        report(f"useful_position_share_overhead_{'never' if overhead is None else overhead}",
               sum(map(sum, lengths)) / padded)


if __name__ == "__main__":
    main()
