"""Hot profile states keyed by artifact id (the version): a retrained profile has a new id, so it is
served with its new artifact on the next request and can never be served stale.

The cache is bounded by bytes: a state's parameters and buffers, plus whatever a method composes and
keeps for a hot profile (AoT's bias rows), which it charges to the same budget as it grows. Pinned
profiles are never evicted; their bytes count against the budget too."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

from profilekit.errors import CacheBudgetError

log = logging.getLogger(__name__)


def state_bytes(state) -> int:
    """What a servable state holds in memory: parameters and buffers, plus its kept composed values."""
    tensors = sum(t.numel() * t.element_size() for t in state.state_dict().values())
    return tensors + getattr(state, "composed_bytes", lambda: 0)()


@dataclass
class Entry:
    state: object
    size: int  # bytes, grown by the state's charges
    pinned_by: str | None = None  # the profile id that pins this artifact


class ArtifactCache:
    """LRU of servable profile states bounded by `max_bytes`; reports hits, misses, evictions, resident
    bytes and states served but not kept (larger than the whole budget).

    `max_entries` is an optional second bound (None: none). `composed_rows` lets methods keep composed
    values of hot profiles (AoT bias rows) within the same budget."""

    def __init__(self, max_bytes: int = 2**30, *, max_entries: int | None = None, composed_rows: bool = True):
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        self.max_bytes, self.max_entries, self.composed_rows = max_bytes, max_entries, composed_rows
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._pins: dict[str, str] = {}  # profile id → the artifact id it pins
        self._lock = threading.Lock()  # request threads look up, load and evict; the batcher charges
        self.resident_bytes = self.pinned_bytes = 0
        self.hits = self.misses = self.evictions = self.not_kept = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, artifact_id: str) -> bool:
        with self._lock:
            return artifact_id in self._entries

    @property
    def pinned_profiles(self) -> dict[str, str]:
        """profile id → the artifact id held for it."""
        with self._lock:
            return dict(self._pins)

    def get(self, artifact_id: str, load):
        """The state for `artifact_id`, calling `load()` on a miss (idempotent: load, insert, evict). A
        state larger than the whole budget is returned but not kept."""
        with self._lock:
            entry = self._entries.get(artifact_id)
            if entry is not None:
                self._entries.move_to_end(artifact_id)
                self.hits += 1
                return entry.state
            self.misses += 1
        state = load()  # outside the lock: two threads may load the same artifact; both get equal states
        size = state_bytes(state)
        with self._lock:
            if size > self.max_bytes - self.pinned_bytes:
                self.not_kept += 1
                log.warning("artifact %s needs %d bytes, more than the artifact cache's %d unpinned bytes "
                            "(PROFILEKIT_ARTIFACT_CACHE_BYTES): served, not kept", artifact_id, size,
                            self.max_bytes - self.pinned_bytes)
                return state
            if artifact_id in self._entries:  # another thread inserted it meanwhile
                return self._entries[artifact_id].state
            if self.composed_rows and hasattr(state, "keep_composed"):  # before any forward can see it
                state.keep_composed(lambda nbytes: self._charge(artifact_id, state, nbytes))
            self._entries[artifact_id] = Entry(state, size)
            self.resident_bytes += size
            self._evict_over_budget(keep=artifact_id)
        return state

    def pin(self, profile_id: str, artifact_id: str) -> None:
        """Keep `artifact_id`, loaded by get(), for `profile_id` until unpinned; moves the profile's pin
        from an older version. Pinned states are resident, so pinned bytes never exceed the budget: a
        state that did not fit beside the pinned ones was not kept and raises CacheBudgetError."""
        with self._lock:
            entry = self._entries.get(artifact_id)
            if entry is None:
                raise CacheBudgetError(
                    f"profile {profile_id} cannot be pinned: its state (artifact {artifact_id}) is not in the "
                    f"artifact cache, it needs more than the {self.max_bytes - self.pinned_bytes} bytes the pinned "
                    f"profiles ({self.pinned_bytes} bytes) leave of its budget of {self.max_bytes} bytes "
                    "(PROFILEKIT_ARTIFACT_CACHE_BYTES); raise the budget or pin fewer profiles")
            if entry.pinned_by == profile_id:
                return
            if entry.pinned_by is not None:
                raise ValueError(f"artifact {artifact_id} is pinned by profile {entry.pinned_by} already")
            self._unpin(profile_id)
            entry.pinned_by = profile_id
            self._pins[profile_id] = artifact_id
            self.pinned_bytes += entry.size

    def unpin(self, profile_id: str) -> None:
        """Let the profile's state be evicted like any other (it stays until then)."""
        with self._lock:
            self._unpin(profile_id)

    def evict(self, artifact_id: str) -> None:
        """Drop `artifact_id` now, pinned or not (its profile was deleted)."""
        with self._lock:
            entry = self._entries.pop(artifact_id, None)
            if entry is not None:
                self.resident_bytes -= entry.size
                if entry.pinned_by is not None:
                    self.pinned_bytes -= entry.size
                    del self._pins[entry.pinned_by]

    def _unpin(self, profile_id: str) -> None:
        entry = self._entries.get(self._pins.pop(profile_id, ""))
        if entry is not None:
            entry.pinned_by = None
            self.pinned_bytes -= entry.size

    def _charge(self, artifact_id: str, state, nbytes: int) -> bool:
        """A kept state asks for `nbytes` more (composed rows): granted if it stays within the budget,
        evicting the least recently used unpinned states; refused (False) if it is no longer resident
        (evicted, perhaps reloaded as another state) or cannot fit."""
        with self._lock:
            entry = self._entries.get(artifact_id)
            if entry is None or entry.state is not state:
                return False
            others_pinned = self.pinned_bytes - (entry.size if entry.pinned_by is not None else 0)
            if entry.size + nbytes > self.max_bytes - others_pinned:
                return False
            entry.size += nbytes
            self.resident_bytes += nbytes
            if entry.pinned_by is not None:
                self.pinned_bytes += nbytes
            self._evict_over_budget(keep=artifact_id)
            return True

    def _evict_over_budget(self, keep: str) -> None:
        """Evict least recently used unpinned states (never `keep`) until both bounds hold."""
        def over() -> bool:
            return self.resident_bytes > self.max_bytes or (
                self.max_entries is not None and len(self._entries) > self.max_entries)

        for artifact_id in list(self._entries):
            if not over():
                return
            entry = self._entries[artifact_id]
            if artifact_id == keep or entry.pinned_by is not None:
                continue
            del self._entries[artifact_id]
            self.resident_bytes -= entry.size
            self.evictions += 1
