"""What one serving process holds: the engine, hot profile states and the dynamic batcher."""

from __future__ import annotations

import logging
from collections.abc import Callable

from profilekit.errors import CacheBudgetError, NotFound, NotTrained, ServingConfigError
from profilekit.serving.batcher import Batcher
from profilekit.serving.cache import ArtifactCache
from profilekit.serving.engines import EngineCache
from profilekit.serving.loader import load_states
from profilekit.settings import Settings

log = logging.getLogger(__name__)


def artifact_cache(settings: Settings, *, max_entries: int | None = None) -> ArtifactCache:
    """The artifact cache as serving keeps it: the settings' byte budget and kept AoT rows, at most
    `max_entries` states (default: the deprecated artifact_cache_entries, usually no bound)."""
    return ArtifactCache(settings.artifact_cache_bytes, max_entries=max_entries or settings.artifact_cache_entries,
                         composed_rows=settings.artifact_cache_composed_rows)


class Serving:
    """Loads the backbone and the pinned profiles when created; `states()` resolves profiles,
    `batcher.submit()` predicts."""

    def __init__(self, settings: Settings, sessions, *, on_batch: Callable[[int], None] | None = None):
        self.sessions = sessions
        self.engines = EngineCache(settings)
        self.cache = artifact_cache(settings)
        if settings.artifact_cache_entries is not None:
            log.warning("PROFILEKIT_ARTIFACT_CACHE_ENTRIES is deprecated: the artifact cache is bounded by "
                        "PROFILEKIT_ARTIFACT_CACHE_BYTES (it still keeps at most %d states)",
                        settings.artifact_cache_entries)
        self.pinned = settings.pinned_profile_ids
        self.engines.engine()
        self._load_pins()
        self.batcher = Batcher(self._run_batch, max_batch_size=settings.max_batch_size,
                               max_wait_ms=settings.max_wait_ms, max_queue_rows=settings.max_queue_rows,
                               max_queue_seconds=settings.max_queue_seconds, on_batch=on_batch)

    def _load_pins(self) -> None:
        """Load and pin the pinned profiles; unknown ids and pins over the budget refuse to start
        (CacheBudgetError, ServingConfigError); an untrained profile is pinned once it is first served."""
        for profile_id in self.pinned:
            with self.sessions() as session:
                try:
                    (_, artifact_id), = load_states(session, profile_ids=[profile_id], engines=self.engines,
                                                    cache=self.cache).values()
                except NotFound as exc:
                    raise ServingConfigError(f"PROFILEKIT_PINNED_PROFILES names an unknown profile: {exc}") from exc
                except NotTrained:
                    log.warning("pinned profile %s has no trained artifact yet; pinned once served", profile_id)
                    continue
            self.cache.pin(profile_id, artifact_id)  # CacheBudgetError if it was not kept

    def states(self, profile_ids: list[str], *, tenant: str | None = None) -> dict[str, tuple[object, str]]:
        """profile id → (state, artifact id); raises NotFound / NotTrained (serving.loader). A pinned
        profile's current artifact is the one pinned (a retrained profile's pin moves to its new version)."""
        with self.sessions() as session:
            states = load_states(session, profile_ids=profile_ids, engines=self.engines, cache=self.cache,
                                 tenant=tenant)
        pins = self.cache.pinned_profiles
        for profile_id in self.pinned:
            if profile_id in states and pins.get(profile_id) != states[profile_id][1]:
                try:
                    self.cache.pin(profile_id, states[profile_id][1])
                except CacheBudgetError as exc:  # served all the same, just not pinned
                    log.warning("profile %s stays unpinned: %s", profile_id, exc)
        return states

    def _run_batch(self, rows: list[tuple[object | None, str]]) -> list:
        """(state or None for the plain backbone, text) per row → one Prediction per row (`Engine.predict`:
        one forward per prompt length among the rows)."""
        return self.engines.engine().predict([text for _, text in rows], [state for state, _ in rows])

    def close(self) -> None:
        self.batcher.close()
