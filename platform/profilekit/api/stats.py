"""Serving health over the last hour, one bucket per minute, for the dashboard's charts: predict requests
and their latency, rows forwarded, the batcher's backlog, 429s and 5xx of every route, process memory
(RSS) and the artifact cache's bytes and hit rate. Each API process keeps its own (the dashboard says
which process answered)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MINUTES = 60
SAMPLE_SECONDS = 10.0  # memory is measured at most this often
SERIES = ("requests_per_second", "rows_per_second", "p50_ms", "p99_ms", "rejected", "errors", "queue_rows",
          "rss_bytes", "cache_bytes", "cache_hit_rate")


@dataclass
class Minute:
    minute: int  # minutes since the epoch
    requests: int = 0
    rows: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds of the minute's predict requests
    rejected: int = 0  # 429 answers
    errors: int = 0  # 5xx answers
    queue_rows: int = 0  # the largest backlog seen by a forward
    rss_bytes: int | None = None
    cache_bytes: int | None = None
    cache_lookups: tuple[int, int] | None = None  # the cache's (hits, misses) so far, at the minute's last sample


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


class History:
    def __init__(self, clock: Callable[[], float] = time.time, max_latencies: int = 10_000):
        self.clock, self.max_latencies = clock, max_latencies
        self._minutes: deque[Minute] = deque(maxlen=MINUTES)
        self._sampled = float("-inf")
        self._lock = threading.Lock()

    def _current(self) -> Minute:
        minute = int(self.clock() // 60)
        if not self._minutes or self._minutes[-1].minute != minute:
            self._minutes.append(Minute(minute))
        return self._minutes[-1]

    def sample(self, memory: Callable[[], tuple[int, int, int, int]]) -> None:
        """Measure now: `memory()` gives (RSS, cache bytes, cache hits, cache misses so far)."""
        self._sampled = self.clock()
        rss, cache, hits, misses = memory()
        with self._lock:
            bucket = self._current()
            bucket.rss_bytes, bucket.cache_bytes, bucket.cache_lookups = rss, cache, (hits, misses)

    def response(self, route: str, status: int, seconds: float,
                 memory: Callable[[], tuple[int, int, int, int]]) -> None:
        """One HTTP answer; a successful prediction counts as a request with its latency. Memory and the
        cache's counters are sampled (`sample`) at most every SAMPLE_SECONDS."""
        if self.clock() - self._sampled >= SAMPLE_SECONDS:
            self.sample(memory)
        with self._lock:
            bucket = self._current()
            bucket.rejected += status == 429
            bucket.errors += status >= 500
            if route == "/v1/predict" and status == 200:
                bucket.requests += 1
                if len(bucket.latencies) < self.max_latencies:
                    bucket.latencies.append(seconds)

    def batch(self, rows: int, queued: int) -> None:
        """One forward of `rows` rows, with `queued` rows still waiting behind it."""
        with self._lock:
            bucket = self._current()
            bucket.rows += rows
            bucket.queue_rows = max(bucket.queue_rows, queued)

    def series(self) -> dict[str, list[float | None]]:
        """Each figure per minute of the last hour, oldest first; the running minute's rates count only
        its seconds so far. Minutes without traffic are 0 (None for latencies and memory). The cache's hit
        rate of a minute counts the lookups since the sample of an earlier minute (None without both)."""
        now = self.clock()
        last = int(now // 60)
        with self._lock:
            by_minute = {m.minute: m for m in self._minutes}
        out: dict[str, list[float | None]] = {name: [] for name in SERIES}
        before = None  # the latest (hits, misses) sampled in an earlier minute
        for minute in range(last - MINUTES + 1, last + 1):
            m = by_minute.get(minute, Minute(minute))
            hit_rate = None
            if m.cache_lookups is not None:
                if before is not None and sum(m.cache_lookups) > sum(before):
                    hit_rate = (m.cache_lookups[0] - before[0]) / (sum(m.cache_lookups) - sum(before))
                before = m.cache_lookups
            seconds = max(1.0, now - minute * 60) if minute == last else 60.0
            p50, p99 = percentile(m.latencies, 0.5), percentile(m.latencies, 0.99)
            values = (m.requests / seconds, m.rows / seconds, None if p50 is None else p50 * 1000,
                      None if p99 is None else p99 * 1000, m.rejected, m.errors, m.queue_rows, m.rss_bytes,
                      m.cache_bytes, hit_rate)
            for name, value in zip(SERIES, values, strict=True):
                out[name].append(value)
        return out


def process_memory(runtime) -> tuple[int, int, int, int]:
    """(resident set size of this process, bytes of hot profile states in the artifact cache, its hits and
    misses so far)."""
    import psutil

    cache = runtime.serving_if_loaded.cache if runtime.serving_if_loaded else None
    rss = psutil.Process().memory_info().rss
    return (rss, cache.resident_bytes, cache.hits, cache.misses) if cache else (rss, 0, 0, 0)
