"""The dynamic batcher: rows of concurrent requests merged into mixed-profile batches.

Requests wait at most `max_wait_ms` for company; a batch holds at most `max_batch_size` rows. The
queue is bounded in rows: when it is full, `submit` raises QueueFull at once (the API answers 429)
instead of letting memory grow.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class QueueFull(Exception):
    pass


@dataclass
class _Request:
    rows: list
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.monotonic)


class Batcher:
    def __init__(self, run_batch: Callable[[list], list], *, max_batch_size: int = 64, max_wait_ms: float = 5.0,
                 max_queue_rows: int = 4096, on_batch: Callable[[int], None] | None = None):
        self.run_batch = run_batch  # rows → results, same order; runs on the batcher's thread
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue_rows = max_queue_rows
        self.on_batch = on_batch
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="profilekit-batcher", daemon=True)
        self._thread.start()

    @property
    def queued_rows(self) -> int:
        return self._pending_rows

    async def submit(self, rows: list) -> list:
        with self._lock:
            if self._pending_rows + len(rows) > self.max_queue_rows:
                raise QueueFull(f"{self._pending_rows} rows are waiting (limit {self.max_queue_rows})")
            self._pending_rows += len(rows)
        loop = asyncio.get_running_loop()
        request = _Request(rows, loop.create_future(), loop)
        self._queue.put(request)
        return await request.future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _take(self) -> list[_Request] | None:
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
            if rows + len(nxt.rows) > self.max_batch_size and rows > 0:
                self._queue.put(nxt)  # goes into the next batch (order among waiting requests may change)
                break
            taken.append(nxt)
            rows += len(nxt.rows)
        return taken

    def _loop(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            rows = [row for request in taken for row in request.rows]
            with self._lock:
                self._pending_rows -= len(rows)
            try:
                results = self.run_batch(rows)
                error = None
            except Exception as exc:  # delivered to each waiting request
                results, error = None, exc
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
