"""The one loader from profile ids to servable states, used by /v1/predict, the command line and the
scale benchmark: one query reads the profiles' current artifact ids, a second the payloads of only
those artifacts the cache does not hold, so hot profiles never touch the artifacts table."""

from __future__ import annotations

from sqlalchemy import select

from profilekit.errors import NotFound, NotTrained
from profilekit.serving.cache import ArtifactCache
from profilekit.serving.engines import EngineCache
from profilekit.store import repo
from profilekit.store.models import Artifact, Profile


def load_states(session, *, profile_ids: list[str], engines: EngineCache, cache: ArtifactCache,
                tenant: str | None = None) -> dict[str, tuple[object, str]]:
    """profile id → (servable state, artifact id) for every id, all or nothing: ids that are unknown (or
    of another tenant than `tenant`; None sees all) raise NotFound listing them, profiles without a
    trained artifact raise NotTrained naming their states."""
    ids = list(dict.fromkeys(profile_ids))
    rows = session.execute(select(Profile.id, Profile.tenant, Profile.current_artifact_id)
                           .where(Profile.id.in_(ids))).all()
    current = {r.id: r.current_artifact_id for r in rows if tenant is None or r.tenant == tenant}
    unknown = [pid for pid in ids if pid not in current]
    if unknown:
        raise NotFound(f"unknown profile{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}", ids=unknown)
    untrained = [pid for pid in ids if current[pid] is None]
    if untrained:
        states = [{"id": pid, "state": repo.profile_status(session, profile=session.get(Profile, pid))}
                  for pid in untrained]
        raise NotTrained("profiles without a trained artifact: " + ", ".join(f"{s['id']} ({s['state']})"
                                                                             for s in states), states)
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
