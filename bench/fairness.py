"""Fair sharing between tenants (issue #14): `.venv/bin/python -m bench.fairness` from the repo root.

One batcher serves the packaged MiniLM (plain rows, on the configured device and dtype). A quiet tenant
sends one request of `--quiet-rows` rows at a time (closed loop), first alone, then while a flooding
tenant keeps `--flood-clients` requests of `--flood-rows` rows in flight (ten times the quiet tenant's
requests, and more rows than a forward holds). Prints, measured in one run:
- quiet_p99_idle_ms, quiet_p99_flood_fair_ms: the quiet tenant's p99 latency alone, and beside the flood
  as two tenants (round-robin forwards);
- quiet_p99_flood_one_queue_ms: the same flood sent under the quiet tenant's own name, i.e. one FIFO
  queue as before tenants were told apart;
- p99_ratio_fair = flood_fair / idle (issue #14 asks ≤ 2), p99_ratio_one_queue = flood_one_queue / idle.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.common import configured_backbone, news_texts, percentile, report
from profilekit.engine import Engine
from profilekit.serving import Batcher


async def quiet_latencies(batcher: Batcher, rows: list, requests: int) -> list[float]:
    latencies = []
    for _ in range(requests):
        began = time.perf_counter()
        await batcher.submit(rows, tenant="quiet")
        latencies.append(time.perf_counter() - began)
    return latencies


async def flood(batcher: Batcher, rows: list, tenant: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await batcher.submit(rows, tenant=tenant)


async def measure(batcher: Batcher, args, quiet_rows: list, flood_rows: list, flood_tenant: str | None) -> float:
    """The quiet tenant's p99 seconds, beside a flood sent as `flood_tenant` (None: no flood)."""
    stop = asyncio.Event()
    flooders = [asyncio.ensure_future(flood(batcher, flood_rows, flood_tenant, stop))
                for _ in range(args.flood_clients if flood_tenant else 0)]
    await asyncio.sleep(0.2 if flooders else 0)  # the flood is queued before the quiet tenant starts
    latencies = await quiet_latencies(batcher, quiet_rows, args.requests)
    stop.set()
    await asyncio.gather(*flooders)
    return percentile(latencies, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40, help="quiet requests measured per phase")
    parser.add_argument("--quiet-rows", type=int, default=2)
    parser.add_argument("--flood-clients", type=int, default=10)
    parser.add_argument("--flood-rows", type=int, default=16)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    args = parser.parse_args()
    engine = Engine(configured_backbone())
    texts = news_texts(args.flood_rows + args.quiet_rows)
    quiet_rows, flood_rows = texts[:args.quiet_rows], texts[args.quiet_rows:]
    batcher = Batcher(lambda rows: engine.predict(rows, [None] * len(rows)), max_batch_size=args.max_batch_size,
                      max_wait_ms=args.max_wait_ms, max_queue_rows=10**6)

    async def run():
        await measure(batcher, args, quiet_rows, flood_rows, None)  # warm-up
        idle = await measure(batcher, args, quiet_rows, flood_rows, None)
        fair = await measure(batcher, args, quiet_rows, flood_rows, "flood")
        one_queue = await measure(batcher, args, quiet_rows, flood_rows, "quiet")
        return idle, fair, one_queue

    try:
        idle, fair, one_queue = asyncio.run(run())
    finally:
        batcher.close()
    report("quiet_rows_per_request", args.quiet_rows)
    report("flood_rows_in_flight", args.flood_clients * args.flood_rows)
    report("max_batch_size", args.max_batch_size)
    report("quiet_p99_idle_ms", idle * 1000)
    report("quiet_p99_flood_fair_ms", fair * 1000)
    report("quiet_p99_flood_one_queue_ms", one_queue * 1000)
    report("p99_ratio_fair", fair / idle)
    report("p99_ratio_one_queue", one_queue / idle)


if __name__ == "__main__":
    main()
