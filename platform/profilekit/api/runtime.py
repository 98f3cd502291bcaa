"""What one API process holds: database sessions, the Celery client, the serving engine with its
artifact cache and dynamic batcher, and the serving statistics the dashboard and /metrics show."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from profilekit.settings import Settings


@dataclass
class Row:
    state: object | None  # ProfileState, or None for the plain backbone
    text: str


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


def secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    if not settings.embedded:
        raise RuntimeError("PROFILEKIT_SECRET_KEY must be set outside the embedded default")
    path = Path(settings.data_dir) / "secret.key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


class Runtime:
    def __init__(self, settings: Settings, *, load_model: bool = True):
        from profilekit.api.batcher import Batcher
        from profilekit.runner import EngineCache
        from profilekit.serving import ArtifactCache
        from profilekit.store import make_engine, make_session_factory
        from workers.app import create_app

        self.settings = settings
        self.db = make_engine(settings.resolved_database_url)
        self.sessions = make_session_factory(self.db)
        self.celery = create_app(settings)
        self.engines = EngineCache(settings)
        self.cache = ArtifactCache(settings.artifact_cache_entries)
        self.stats = ServingStats()
        self.load_lock = threading.Lock()
        self.secret = secret_key(settings)
        self.model_loaded = False
        self.batcher = Batcher(self._run_batch, max_batch_size=settings.max_batch_size,
                               max_wait_ms=settings.max_wait_ms, max_queue_rows=settings.max_queue_rows,
                               on_batch=self.stats.record_batch)
        if load_model:
            self.engine()

    def engine(self):
        with self.load_lock:
            engine = self.engines.serving_engine([])
            self.model_loaded = True
            return engine

    def state_for(self, artifact, pool_row):
        """A servable state for a stored artifact row, from the cache or loaded once."""
        def load():
            with self.load_lock:
                engine = self.engines.serving_engine([pool_row] if pool_row is not None else [])
                return engine.load(artifact.payload)

        return self.cache.get(artifact.id, load)

    def _run_batch(self, rows: list[Row]) -> list:
        import torch

        engine = self.engine()
        with torch.inference_mode():
            return engine.predict([r.text for r in rows], [r.state for r in rows])

    def close(self) -> None:
        self.batcher.close()
        self.db.dispose()
