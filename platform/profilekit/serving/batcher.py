"""The dynamic batcher: rows of concurrent requests merged into mixed-profile batches.

Requests wait at most `max_wait_ms` for company; a batch holds at most `max_batch_size` rows.

Tenants share forwards fairly: each tenant's requests wait in a queue of their own (oldest first), and a
forward is filled round-robin, one row per tenant in turn, the turn carrying over to the next forward.
A tenant sending ten times the rows of another cannot starve it: a request of the quiet tenant queued
behind any flood is in the next forward. A request larger than its share is split across forwards; its
answers are put back in its rows' order.

Admission is bounded by time, not only by rows: the batcher measures the rows per second its forwards
compute, and a request whose rows would wait longer than `max_queue_seconds` (or its own deadline) is
refused at once with QueueFull, which says when to retry. The wait is estimated as round-robin serves it:
the forward in flight, the tenant's own rows and, of every other tenant, at most as many rows as the
tenant's own. The rows limit `max_queue_rows` (all tenants together) bounds memory before the first
forward has been measured.

A request nobody waits for any more is never computed: rows whose caller went away (its awaiting task
was cancelled, as the API does when the client disconnects) or whose deadline passed are dropped when
the batcher reaches them, before their forward, and counted in `dropped_rows`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_TENANT = "default"
log = logging.getLogger(__name__)


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
    tenant: str
    deadline: float | None = None  # time.monotonic() after which nobody wants the answer
    enqueued: float = field(default_factory=time.monotonic)
    taken: int = 0  # rows handed to forwards (or dropped) so far, in order
    answered: int = 0
    failed: bool = False  # its future holds an exception: the rest of its rows are not computed
    results: list = field(init=False)  # one slot per row, filled as its forwards answer

    def __post_init__(self) -> None:
        self.results = [None] * len(self.rows)

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now > self.deadline


@dataclass
class _Slice:
    """Rows start:stop of a request, in one forward."""

    request: _Request
    start: int
    stop: int


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
        self._waiting: dict[str, deque[_Request]] = {}  # tenant → its requests with rows to take, oldest first
        self._pending: dict[str, int] = {}  # tenant → its rows waiting
        self._turns: deque[str] = deque()  # tenants with rows waiting, whose turn comes first first
        self._pending_rows = 0
        self._inflight_rows = 0  # rows of the forward running now
        self._closed = False
        self._changed = threading.Condition()  # guards everything above; notified when rows arrive
        self._thread = threading.Thread(target=self._loop, name="profilekit-batcher", daemon=True)
        self._thread.start()

    @property
    def queued_rows(self) -> int:
        return self._pending_rows

    def expected_wait(self, rows: int = 0, tenant: str = DEFAULT_TENANT) -> float | None:
        """Seconds until `rows` more rows of `tenant` would be computed, round-robin behind today's backlog:
        the forward in flight, the tenant's waiting rows and the new ones, and of every other tenant at most
        as many; None before the first forward has been measured."""
        rate = self.rows_per_second
        if rate is None:
            return None
        mine = self._pending.get(tenant, 0) + rows
        others = sum(min(waiting, mine) for other, waiting in self._pending.items() if other != tenant)
        return (self._inflight_rows + mine + others) / rate

    async def submit(self, rows: list, *, timeout: float | None = None, tenant: str = DEFAULT_TENANT) -> list:
        """The rows' results, or QueueFull (refused now) / DeadlineExceeded (`timeout` seconds passed
        before they were computed). Cancelling the awaiting task drops the rows from the queue."""
        if not rows:
            return []
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else time.monotonic() + timeout
        request = _Request(list(rows), loop.create_future(), loop, tenant, deadline)
        with self._changed:
            self._admit(len(rows), timeout, tenant)
            if tenant not in self._waiting:
                self._waiting[tenant], self._pending[tenant] = deque(), 0
                self._turns.append(tenant)
            self._waiting[tenant].append(request)
            self._pending[tenant] += len(rows)
            self._pending_rows += len(rows)
            self._changed.notify()
        try:
            return await asyncio.wait_for(request.future, timeout)  # on timeout the future is cancelled: dropped
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"{timeout:.3f} s passed before the rows were computed") from None

    def _admit(self, rows: int, timeout: float | None, tenant: str) -> None:
        if self._pending_rows + rows > self.max_queue_rows:
            raise QueueFull(f"{self._pending_rows} rows are waiting (limit {self.max_queue_rows})",
                            self._retry_after(tenant))
        wait = self.expected_wait(rows, tenant)
        if wait is None or self._pending_rows == 0:  # nothing waits: the next forward is its own (and measures anew)
            return
        bound = min(b for b in (self.max_queue_seconds, timeout, math.inf) if b is not None)
        if wait > bound:
            raise QueueFull(f"{self._pending_rows} rows are waiting: about {wait:.2f} s, more than "
                            f"{bound:.2f} s", self._retry_after(tenant))

    def _retry_after(self, tenant: str) -> int:
        """Whole seconds for the backlog ahead of the tenant to drain at the measured rate (at least 1)."""
        wait = self.expected_wait(0, tenant) or 0.0
        return max(1, math.ceil(wait))

    def close(self) -> None:
        """Stop after the rows already waiting are computed."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(10)

    def _live(self, request: _Request) -> bool:
        """False (and the request's rows not yet taken dropped from the backlog) when nobody waits for its
        answer. Called with the lock held."""
        gone, expired = request.future.cancelled() or request.failed, request.expired(time.monotonic())
        if not (gone or expired):
            return True
        left = len(request.rows) - request.taken
        request.taken = len(request.rows)
        self._pending[request.tenant] -= left
        self._pending_rows -= left
        self.dropped_rows += left
        if not gone:
            request.failed = True
            request.loop.call_soon_threadsafe(_set_exception, request.future,
                                              DeadlineExceeded("the deadline passed before the rows were computed"))
        return False

    def _take(self) -> list[_Slice] | None:
        """The next forward's rows (empty when every waiting request was dropped); None once closed and
        drained. Waits for rows, then up to `max_wait` after the oldest arrived for a full batch."""
        with self._changed:
            while not self._turns:
                if self._closed:
                    return None
                self._changed.wait()
            oldest = min(queue[0].enqueued for queue in self._waiting.values())
            while self._pending_rows < self.max_batch_size and not self._closed:
                left = oldest + self.max_wait - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return self._fill()

    def _fill(self) -> list[_Slice]:
        """Up to `max_batch_size` rows, one row per tenant in turn (a tenant with no rows left leaves the
        turns; the next forward goes on with whoever is next). Called with the lock held."""
        slices: dict[int, _Slice] = {}  # id(request) → its rows in this forward
        rows = 0
        while rows < self.max_batch_size and self._turns:
            tenant = self._turns.popleft()
            queue = self._waiting[tenant]
            request = queue[0]
            if self._live(request):
                part = slices.get(id(request))
                if part is None:  # the request's first row in this forward
                    part = slices[id(request)] = _Slice(request, request.taken, request.taken)
                part.stop += 1
                request.taken += 1
                self._pending[tenant] -= 1
                self._pending_rows -= 1
                rows += 1
            if request.taken == len(request.rows):
                queue.popleft()
            if queue:
                self._turns.append(tenant)
            else:
                del self._waiting[tenant], self._pending[tenant]
        return list(slices.values())

    def _measure(self, rows: int, seconds: float) -> None:
        rate = rows / max(seconds, 1e-6)
        self.rows_per_second = rate if self.rows_per_second is None else 0.8 * self.rows_per_second + 0.2 * rate

    def _loop(self) -> None:
        while True:
            slices = self._take()
            if slices is None:
                return
            if not slices:
                continue
            rows = [row for part in slices for row in part.request.rows[part.start:part.stop]]
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
                try:
                    self.on_batch(len(rows))
                except Exception:  # an observer's failure must not stop the batcher (every waiter would hang)
                    log.exception("the batcher's on_batch observer failed")
            self._deliver(slices, results, error)

    @staticmethod
    def _deliver(slices: list[_Slice], results: list | None, error: Exception | None) -> None:
        """Each slice's results into its request's rows; a request is answered when its last row is."""
        at = 0
        for part in slices:
            request, size = part.request, part.stop - part.start
            mine, at = (results[at:at + size] if results is not None else None), at + size
            if request.failed:  # its deadline passed while this forward ran
                continue
            if error is not None:
                request.failed = True
                request.loop.call_soon_threadsafe(_set_exception, request.future, error)
                continue
            request.results[part.start:part.stop] = mine
            request.answered += size
            if request.answered == len(request.rows):
                request.loop.call_soon_threadsafe(_set_result, request.future, request.results)


def _set_result(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
