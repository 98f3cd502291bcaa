"""From a stored profile to a servable state: its current artifact, on the engine with its pool."""

from __future__ import annotations

from profilekit.errors import ProfilekitError
from profilekit.store import repo


class NotTrained(ProfilekitError):
    """The profile exists but has no trained artifact yet."""


def profile_status(session, *, profile) -> str:
    """new (no job yet), queued/running (latest job), ready (has an artifact), failed."""
    from sqlalchemy import select

    from profilekit.store.models import Job

    jobs = session.scalars(select(Job).where(Job.tenant == profile.tenant).order_by(Job.created_at.desc()))
    latest = next((j for j in jobs if profile.id in j.profile_ids), None)
    if latest is not None and latest.state in ("queued", "running"):
        return latest.state if profile.current_artifact_id is None else f"ready ({latest.state} retraining)"
    if profile.current_artifact_id is not None:
        return "ready"
    return latest.state if latest is not None else "new"


def load_profile_state(session, *, profile, cache):
    """→ (state, engine, artifact row); raises NotTrained naming the profile's state."""
    artifact = repo.current_artifact(session, profile=profile)
    if artifact is None:
        state = profile_status(session, profile=profile)
        raise NotTrained(f"profile {profile.id} has no trained artifact (state: {state})")
    pool_row = repo.get_pool(session, pool_hash=artifact.pool_hash) if artifact.pool_hash else None
    engine = cache.engine_for(pool_row)
    return engine.load(artifact.payload), engine, artifact


def load_profile_states(session, *, profile_ids, engines, cache) -> dict[str, tuple[object, str]]:
    """profile id → (servable state, artifact id) for each of `profile_ids` that has a current artifact;
    unknown and untrained ids are left out. One query reads the profiles' current artifact ids, a second
    the payloads of those artifacts `cache` does not hold; each is loaded once on `engines`' engine
    (runner.EngineCache) with its pool. Hot profiles never touch the artifacts table."""
    from sqlalchemy import select

    from profilekit.store.models import Artifact, Profile

    ids = list(dict.fromkeys(profile_ids))
    current = dict(session.execute(select(Profile.id, Profile.current_artifact_id).where(
        Profile.id.in_(ids), Profile.current_artifact_id.is_not(None))).all())
    missing = [a for a in dict.fromkeys(current.values()) if a not in cache]
    query = select(Artifact.id, Artifact.pool_hash, Artifact.payload)
    stored = {row.id: row for row in session.execute(query.where(Artifact.id.in_(missing)))} if missing else {}

    engine_of: dict[str | None, object] = {}  # one pool look-up per pool, not per artifact

    def load(artifact_id: str):
        row = stored.get(artifact_id) or session.execute(query.where(Artifact.id == artifact_id)).one()  # evicted since
        if row.pool_hash not in engine_of:
            pools = [repo.get_pool(session, pool_hash=row.pool_hash)] if row.pool_hash else []
            engine_of[row.pool_hash] = engines.serving_engine(pools)
        return engine_of[row.pool_hash].load(row.payload)

    return {pid: (cache.get(aid, lambda aid=aid: load(aid)), aid) for pid, aid in current.items()}


class ArtifactCache:
    """Hot profile states keyed by artifact id (the version): a retrained profile has a new id, so it
    is served with its new artifact on the next request. Bounded LRU; reports its resident bytes."""

    def __init__(self, max_entries: int = 10_000):
        import threading
        from collections import OrderedDict

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
