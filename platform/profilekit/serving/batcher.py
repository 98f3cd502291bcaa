"""The dynamic batcher: rows of concurrent requests merged into mixed-profile batches.

Requests wait at most `max_wait_ms` for company; a batch holds at most `max_batch_size` rows.
Admission is bounded by time, not only by rows: the batcher measures the rows per second its forwards
compute, and a request whose rows would wait longer than `max_queue_seconds` behind the backlog (or
longer than its own deadline) is refused at once with QueueFull, which says when to retry. The rows
limit `max_queue_rows` still bounds memory before the first forward has been measured.

A request nobody waits for any more is never computed: rows whose caller went away (its awaiting task
was cancelled, as the API does when the client disconnects) or whose deadline passed are dropped when
the batcher reaches them, before their forward, and counted in `dropped_rows`.
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class QueueFull(Exception):
    """The request is refused now; `retry_after` is how many seconds the current backlog needs."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    """The request's deadline passed while its rows waited; they were not computed."""


@dataclass
class _Request:
    rows: list
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    deadline: float | None = None  # time.monotonic() after which nobody wants the answer
    enqueued: float = field(default_factory=time.monotonic)

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now > self.deadline


class Batcher:
    def __init__(self, run_batch: Callable[[list], list], *, max_batch_size: int = 64, max_wait_ms: float = 5.0,
                 max_queue_rows: int = 4096, max_queue_seconds: float | None = None,
                 on_batch: Callable[[int], None] | None = None):
        self.run_batch = run_batch  # rows → results, same order; runs on the batcher's thread
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue_rows = max_queue_rows
        self.max_queue_seconds = max_queue_seconds
        self.on_batch = on_batch
        self.rows_per_second: float | None = None  # measured on the forwards, a moving average
        self.dropped_rows = 0  # rows never computed: their caller left or their deadline passed
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._pending_rows = 0
        self._inflight_rows = 0  # rows of the forward running now
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="profilekit-batcher", daemon=True)
        self._thread.start()

    @property
    def queued_rows(self) -> int:
        return self._pending_rows

    def expected_wait(self, rows: int = 0) -> float | None:
        """Seconds until `rows` more rows would be computed behind today's backlog (the rows waiting and
        those of the forward in flight); None before the first forward has been measured."""
        rate = self.rows_per_second
        return None if rate is None else (self._pending_rows + self._inflight_rows + rows) / rate

    async def submit(self, rows: list, *, timeout: float | None = None) -> list:
        """The rows' results, or QueueFull (refused now) / DeadlineExceeded (`timeout` seconds passed
        before they were computed). Cancelling the awaiting task drops the rows from the queue."""
        with self._lock:
            self._admit(len(rows), timeout)
            self._pending_rows += len(rows)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else time.monotonic() + timeout
        request = _Request(rows, loop.create_future(), loop, deadline)
        self._queue.put(request)
        try:
            return await asyncio.wait_for(request.future, timeout)  # on timeout the future is cancelled: dropped
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"{timeout:.3f} s passed before the rows were computed") from None

    def _admit(self, rows: int, timeout: float | None) -> None:
        if self._pending_rows + rows > self.max_queue_rows:
            raise QueueFull(f"{self._pending_rows} rows are waiting (limit {self.max_queue_rows})",
                            self._retry_after())
        wait = self.expected_wait(rows)
        if wait is None or self._pending_rows == 0:  # nothing waits: the next forward is its own (and measures anew)
            return
        bound = min(b for b in (self.max_queue_seconds, timeout, math.inf) if b is not None)
        if wait > bound:
            raise QueueFull(f"{self._pending_rows} rows are waiting: about {wait:.2f} s, more than "
                            f"{bound:.2f} s", self._retry_after())

    def _retry_after(self) -> int:
        """Whole seconds for the backlog to drain at the measured rate (at least 1)."""
        wait = self.expected_wait() or 0.0
        return max(1, math.ceil(wait))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _live(self, request: _Request) -> bool:
        """False (and the request's rows dropped from the backlog) when nobody waits for its answer."""
        gone, expired = request.future.cancelled(), request.expired(time.monotonic())
        if not (gone or expired):
            return True
        with self._lock:
            self._pending_rows -= len(request.rows)
            self.dropped_rows += len(request.rows)
        if expired:
            request.loop.call_soon_threadsafe(_set_exception, request.future,
                                              DeadlineExceeded("the deadline passed before the rows were computed"))
        return False

    def _take(self) -> list[_Request] | None:
        first = self._queue.get()
        while first is not None and not self._live(first):
            first = self._queue.get()
        if first is None:
            return None
        taken, rows = [first], len(first.rows)
        deadline = first.enqueued + self.max_wait
        while rows < self.max_batch_size:
            try:
                nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if nxt is None:
                self._queue.put(None)
                break
            if not self._live(nxt):
                continue
            if rows + len(nxt.rows) > self.max_batch_size and rows > 0:
                self._queue.put(nxt)  # goes into the next batch (order among waiting requests may change)
                break
            taken.append(nxt)
            rows += len(nxt.rows)
        return taken

    def _measure(self, rows: int, seconds: float) -> None:
        rate = rows / max(seconds, 1e-6)
        self.rows_per_second = rate if self.rows_per_second is None else 0.8 * self.rows_per_second + 0.2 * rate

    def _loop(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            rows = [row for request in taken for row in request.rows]
            with self._lock:
                self._pending_rows -= len(rows)
                self._inflight_rows = len(rows)
            began = time.perf_counter()
            try:
                results = self.run_batch(rows)
                error = None
            except Exception as exc:  # delivered to each waiting request
                results, error = None, exc
            self._measure(len(rows), time.perf_counter() - began)
            self._inflight_rows = 0
            if self.on_batch is not None:
                self.on_batch(len(rows))
            start = 0
            for request in taken:
                if error is not None:
                    request.loop.call_soon_threadsafe(_set_exception, request.future, error)
                else:
                    part = results[start:start + len(request.rows)]
                    request.loop.call_soon_threadsafe(_set_result, request.future, part)
                start += len(request.rows)


def _set_result(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
