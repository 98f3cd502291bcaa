"""`profilekit bench` (also `python -m bench.run`): profilekit against the libraries a user would pick
instead, in one run, as `name: value` lines (ratios are profilekit over the peer, measured with the
cases interleaved).

Parts: peers (mixed-profile inference against HF PEFT LoRA and the `adapters` library, PEFT's
adapter loading and registration), scale (profiles registered in the database, serving random ones,
cold first predictions, training cost against N)."""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time

from bench import peers, scale
from bench.common import report

PARTS = ("peers", "scale")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="profilekit bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    peers.add_arguments(parser)
    scale.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = build_parser()
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"--parts: unknown {unknown}; known: {', '.join(PARTS)}")
    report("machine", f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
                      f"{torch.get_num_threads()} threads")
    report("load_average_before", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    began = time.perf_counter()
    if "peers" in parts:
        peers.run(args, report)
        gc.collect()  # the peers' models (hundreds of LoRA modules) must not slow the scale part's GC
    if "scale" in parts:
        scale.run(args, report)
    report("load_average_after", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    report("bench_seconds", time.perf_counter() - began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
