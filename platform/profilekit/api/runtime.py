"""What one API process holds: database sessions, the queue client, the serving statistics the
dashboard and /metrics show, and — loaded at start-up, or on the first prediction when
`preload_model` is off — the serving floor (engine, hot profile states, batcher). Everything but the
serving floor imports no torch."""

from __future__ import annotations

import threading
import time
from collections import deque

from profilekit.api.limits import RowRateLimit
from profilekit.api.stats import History
from profilekit.settings import Settings


class ServingStats:
    """Recent requests and batches, for requests/s, latency percentiles and the batch-size histogram."""

    def __init__(self, window: int = 10_000):
        self.latencies: deque[tuple[float, float]] = deque(maxlen=window)  # (finished at, seconds)
        self.batch_sizes: deque[int] = deque(maxlen=window)
        self.lock = threading.Lock()

    def record_request(self, seconds: float) -> None:
        with self.lock:
            self.latencies.append((time.time(), seconds))

    def record_batch(self, rows: int) -> None:
        with self.lock:
            self.batch_sizes.append(rows)

    def summary(self, window_seconds: float = 60.0) -> dict:
        with self.lock:
            now = time.time()
            recent = sorted(s for t, s in self.latencies if now - t <= window_seconds)
            sizes = list(self.batch_sizes)

        def pct(q):
            return recent[min(len(recent) - 1, int(q * len(recent)))] if recent else None

        histogram: dict[str, int] = {}
        for low, high in ((1, 1), (2, 4), (5, 8), (9, 16), (17, 32), (33, 64), (65, 10**9)):
            label = f"{low}" if low == high else (f"{low}–{high}" if high < 10**9 else f"{low}+")
            histogram[label] = sum(low <= s <= high for s in sizes)
        return {"requests_per_second": len(recent) / window_seconds, "p50_seconds": pct(0.5),
                "p99_seconds": pct(0.99), "batch_histogram": histogram, "batches": len(sizes),
                "mean_batch_size": sum(sizes) / len(sizes) if sizes else None}


class Runtime:
    def __init__(self, settings: Settings):
        from profilekit.jobs import make_celery
        from profilekit.store import make_engine, make_session_factory

        self.settings = settings
        self.db = make_engine(settings.resolved_database_url)
        self.sessions = make_session_factory(self.db)
        self.celery = make_celery(settings)
        self.stats = ServingStats()
        self.rate_limit = RowRateLimit(default_rate=settings.rate_limit_rows_per_second,
                                       burst_seconds=settings.rate_limit_burst_seconds)
        self.history = History()  # the dashboard's charts of the last hour
        self.dashboard_cache: dict = {}  # the dashboard's costly totals, kept a few seconds (dashboard/data.py)
        self.batch_observers = [self.stats.record_batch]  # called with the rows of each forward
        self._serving = None
        self._serving_lock = threading.Lock()

    @property
    def serving(self):
        """The serving floor, created (backbone loaded) on first use."""
        with self._serving_lock:
            if self._serving is None:
                from profilekit.serving import Serving

                self._serving = Serving(self.settings, self.sessions, on_batch=self._on_batch)
            return self._serving

    @property
    def serving_if_loaded(self):
        return self._serving

    def _on_batch(self, rows: int) -> None:
        for observe in self.batch_observers:
            observe(rows)
        self.history.batch(rows, self._serving.batcher.queued_rows if self._serving is not None else 0)

    def close(self) -> None:
        if self._serving is not None:
            self._serving.close()
        self.db.dispose()
