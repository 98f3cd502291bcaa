"""Tenants share the batcher's forwards fairly: a forward is filled round-robin, one row per tenant in
turn, so a tenant flooding the queue cannot starve another; a request split across forwards still gets
its answers in its rows' order, and the admission estimate of a quiet tenant does not count the whole
flood ahead of it."""

from __future__ import annotations

import asyncio
import threading

from profilekit.serving import Batcher


class HeldForwards:
    """run_batch that records each forward's rows; the first forward waits until released, so that the
    test can queue rows behind it."""

    def __init__(self):
        self.batches: list[list] = []
        self.inside, self.release = threading.Event(), threading.Event()

    def __call__(self, rows):
        self.batches.append(list(rows))
        self.inside.set()
        self.release.wait(10)
        return [f"answer {row}" for row in rows]


def run_held(batcher: Batcher, forwards: HeldForwards, queue_behind) -> list:
    """Hold a first forward (one row of tenant "first"), let `queue_behind(submit)` queue requests behind
    it, release, and return the queued requests' results in the order they were queued."""

    async def scenario():
        first = asyncio.ensure_future(batcher.submit(["first"], tenant="first"))
        await asyncio.get_running_loop().run_in_executor(None, forwards.inside.wait, 10)
        tasks = []
        queue_behind(lambda rows, tenant: tasks.append(asyncio.ensure_future(batcher.submit(rows, tenant=tenant))))
        await asyncio.sleep(0.05)  # every task has queued its rows
        forwards.release.set()
        await first
        return await asyncio.gather(*tasks)

    try:
        return asyncio.run(scenario())
    finally:
        forwards.release.set()
        batcher.close()


def test_a_flooding_tenant_and_a_quiet_one_share_each_forward_round_robin():
    forwards = HeldForwards()
    batcher = Batcher(forwards, max_batch_size=8, max_wait_ms=1)

    def queue(submit):
        for i in range(10):  # the flood: 10 requests of 4 rows, queued first
            submit([f"flood {i}.{j}" for j in range(4)], "flood")
        submit(["quiet 0", "quiet 1"], "quiet")
        submit(["quiet 2"], "quiet")

    results = run_held(batcher, forwards, queue)
    second = forwards.batches[1]  # the first forward after the flood was queued
    assert [row for row in second if row.startswith("quiet")] == ["quiet 0", "quiet 1", "quiet 2"]
    assert [row for row in second if row.startswith("flood")] == ["flood 0.0", "flood 0.1", "flood 0.2",
                                                                   "flood 0.3", "flood 1.0"]
    assert all(row.startswith("flood") for batch in forwards.batches[2:] for row in batch)
    assert results[10] == ["answer quiet 0", "answer quiet 1"] and results[11] == ["answer quiet 2"]
    assert results[0] == [f"answer flood 0.{j}" for j in range(4)]


def test_two_busy_tenants_get_half_of_every_forward_each():
    forwards = HeldForwards()
    batcher = Batcher(forwards, max_batch_size=8, max_wait_ms=1)

    def queue(submit):
        for tenant in ("a", "b"):
            for i in range(4):
                submit([f"{tenant}{i}.{j}" for j in range(6)], tenant)

    run_held(batcher, forwards, queue)
    after = forwards.batches[1:]
    assert [len(batch) for batch in after] == [8, 8, 8, 8, 8, 8]  # 48 rows in six full forwards
    for batch in after:
        assert sorted(row[0] for row in batch) == list("aaaabbbb")


def test_a_request_split_across_forwards_gets_its_answers_in_order():
    forwards = HeldForwards()
    batcher = Batcher(forwards, max_batch_size=4, max_wait_ms=1)

    def queue(submit):
        submit([f"long {i}" for i in range(10)], "a")
        submit(["short 0", "short 1"], "b")

    long, short = run_held(batcher, forwards, queue)
    assert long == [f"answer long {i}" for i in range(10)]
    assert short == ["answer short 0", "answer short 1"]
    assert forwards.batches[1] == ["long 0", "long 1", "short 0", "short 1"]  # a forward lists rows by request
    assert [len(batch) for batch in forwards.batches[1:]] == [4, 4, 4]


def test_admission_of_a_quiet_tenant_counts_its_round_robin_share_of_the_flood():
    forwards = HeldForwards()
    batcher = Batcher(forwards, max_batch_size=64, max_wait_ms=1, max_queue_seconds=1.0)
    batcher.rows_per_second = 10.0  # as measured: the flood's 30 rows are 3 s of backlog

    async def scenario():
        first = asyncio.ensure_future(batcher.submit(["first"], tenant="first"))
        await asyncio.get_running_loop().run_in_executor(None, forwards.inside.wait, 10)
        flood = asyncio.ensure_future(batcher.submit(list(range(30)), tenant="flood"))
        await asyncio.sleep(0.05)
        flood_wait, quiet_wait = batcher.expected_wait(1, "flood"), batcher.expected_wait(1, "quiet")
        quiet = await asyncio.wait_for(_after(forwards.release, batcher.submit(["q"], tenant="quiet")), 10)
        await first
        await flood
        return flood_wait, quiet_wait, quiet

    try:
        flood_wait, quiet_wait, quiet = asyncio.run(scenario())
    finally:
        forwards.release.set()
        batcher.close()
    assert flood_wait == (1 + 31) / 10  # the forward in flight and 31 rows of its own: refused (> 1 s)
    assert quiet_wait == (1 + 1 + 1) / 10  # in flight, its own row and one row of the flood ahead of it
    assert quiet == ["answer q"]


async def _after(release: threading.Event, work):
    task = asyncio.ensure_future(work)
    await asyncio.sleep(0.05)  # admitted and queued (a refusal would raise QueueFull here)
    release.set()
    return await task
