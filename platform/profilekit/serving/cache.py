"""Hot profile states keyed by artifact id (the version): a retrained profile has a new id, so it is
served with its new artifact on the next request and can never be served stale."""

from __future__ import annotations

import threading
from collections import OrderedDict


class ArtifactCache:
    """Bounded LRU of servable profile states; reports its resident bytes, hits and misses."""

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._states: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()  # request threads look up, load and evict concurrently
        self.hits = self.misses = 0

    @property
    def resident_bytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, artifact_id: str) -> bool:
        with self._lock:
            return artifact_id in self._states

    def get(self, artifact_id: str, load):
        """The state for `artifact_id`, calling `load()` on a miss (idempotent: load, insert, evict)."""
        with self._lock:
            entry = self._states.get(artifact_id)
            if entry is not None:
                self._states.move_to_end(artifact_id)
                self.hits += 1
                return entry[0]
            self.misses += 1
        state = load()  # outside the lock: two threads may load the same artifact; both get equal states
        size = sum(t.numel() * t.element_size() for t in state.state_dict().values())
        with self._lock:
            self._states[artifact_id] = (state, size)
            while len(self._states) > self.max_entries:
                self._states.popitem(last=False)
        return state

    def evict(self, artifact_id: str) -> None:
        with self._lock:
            self._states.pop(artifact_id, None)
