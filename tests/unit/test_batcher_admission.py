"""The batcher admits by expected queue time: behind a backlog it would take longer than
max_queue_seconds to compute, a request is refused with the seconds that backlog needs; nothing
waiting, a request is always admitted. A request's own timeout bounds its wait too."""

from __future__ import annotations

import asyncio
import threading

import pytest

from profilekit.serving import Batcher, DeadlineExceeded, QueueFull


def test_admission_by_expected_wait_and_retry_after_from_the_backlog():
    release, inside = threading.Event(), threading.Event()

    def held(rows):
        inside.set()
        release.wait(10)
        return list(rows)

    batcher = Batcher(held, max_batch_size=64, max_wait_ms=1, max_queue_seconds=1.0)
    batcher.rows_per_second = 10.0  # as measured: 10 rows/s
    other = Batcher(held, max_queue_seconds=1.0)

    async def scenario():
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.get_running_loop().run_in_executor(None, inside.wait, 10)  # "a" is in its forward
        second = asyncio.ensure_future(batcher.submit(list(range(30))))  # nothing waits: admitted
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull) as refused:
            await batcher.submit(["b"])  # 31 rows at 10 rows/s: 3.1 s > 1 s
        with pytest.raises(DeadlineExceeded):  # admitted before any forward was measured, then waits too long
            await other.submit(["c"], timeout=0.05)
        release.set()
        return refused.value.retry_after, await first, len(await second)

    try:
        retry_after, first, second = asyncio.run(scenario())
    finally:
        release.set()
        batcher.close()
        other.close()
    assert retry_after == 4  # the 30 waiting rows and the one in flight at 10 rows/s: 3.1 s
    assert first == ["a"] and second == 30


def test_a_failing_batch_observer_does_not_stop_the_batcher():
    def observer(rows):
        raise RuntimeError("metrics backend down")

    batcher = Batcher(lambda rows: [row * 2 for row in rows], max_wait_ms=1, on_batch=observer)

    async def scenario():
        first = await asyncio.wait_for(batcher.submit([1, 2]), 5)
        second = await asyncio.wait_for(batcher.submit([3]), 5)  # the batcher is still there after the failure
        return first, second

    try:
        assert asyncio.run(scenario()) == ([2, 4], [6])
    finally:
        batcher.close()


@pytest.mark.parametrize(("setting", "value"), [("max_batch_size", 0), ("max_batch_size", -1),
                                                ("max_queue_rows", 0), ("max_wait_ms", -1), ("max_length", 0)])
def test_serving_settings_a_batcher_cannot_work_with_refuse_to_start(monkeypatch, setting, value):
    """A forward of at most 0 rows took nothing, for ever: the batcher's thread spun and every prediction hung."""
    from pydantic import ValidationError

    from profilekit.settings import Settings

    monkeypatch.setenv(f"PROFILEKIT_{setting.upper()}", str(value))
    with pytest.raises(ValidationError, match=setting):
        Settings()
