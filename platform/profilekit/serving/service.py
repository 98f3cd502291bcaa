"""What one serving process holds: the engine, hot profile states and the dynamic batcher."""

from __future__ import annotations

from collections.abc import Callable

from profilekit.serving.batcher import Batcher
from profilekit.serving.cache import ArtifactCache
from profilekit.serving.engines import EngineCache
from profilekit.serving.loader import load_states
from profilekit.settings import Settings


class Serving:
    """Loads the backbone when created; `states()` resolves profiles, `batcher.submit()` predicts."""

    def __init__(self, settings: Settings, sessions, *, on_batch: Callable[[int], None] | None = None):
        self.sessions = sessions
        self.engines = EngineCache(settings)
        self.cache = ArtifactCache(settings.artifact_cache_entries)
        self.engines.engine()
        self.batcher = Batcher(self._run_batch, max_batch_size=settings.max_batch_size,
                               max_wait_ms=settings.max_wait_ms, max_queue_rows=settings.max_queue_rows,
                               max_queue_seconds=settings.max_queue_seconds, on_batch=on_batch)

    def states(self, profile_ids: list[str], *, tenant: str | None = None) -> dict[str, tuple[object, str]]:
        """profile id → (state, artifact id); raises NotFound / NotTrained (serving.loader)."""
        with self.sessions() as session:
            return load_states(session, profile_ids=profile_ids, engines=self.engines, cache=self.cache,
                               tenant=tenant)

    def _run_batch(self, rows: list[tuple[object | None, str]]) -> list:
        """(state or None for the plain backbone, text) per row → one Prediction per row, one forward."""
        return self.engines.engine().predict([text for _, text in rows], [state for state, _ in rows])

    def close(self) -> None:
        self.batcher.close()
