"""What the dashboard shows, read from the database and the API process."""

from __future__ import annotations

from sqlalchemy import func, select

from profilekit.store.models import Artifact, Job, Pool, Profile


def queue(session) -> dict:
    by_state = dict(session.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    running = list(session.scalars(select(Job).where(Job.state == "running").order_by(Job.started_at)))
    recent = list(session.scalars(select(Job).order_by(Job.created_at.desc()).limit(20)))
    states = ("queued", "running", "succeeded", "failed", "cancelled")
    return {"by_state": {s: by_state.get(s, 0) for s in states},
            "running": running, "recent": recent}


def memory(session, runtime) -> dict:
    current = select(Artifact).join(Profile, Profile.current_artifact_id == Artifact.id).subquery()
    by_method = [{"method": m, "profiles": n, "total_bytes": int(total), "mean_bytes": float(total) / n}
                 for m, n, total in session.execute(
                     select(current.c.method, func.count(), func.sum(current.c.stored_bytes))
                     .group_by(current.c.method).order_by(current.c.method))]
    pools = list(session.scalars(select(Pool).order_by(Pool.created_at)))
    profiles = session.scalar(select(func.count()).select_from(Profile))
    serving = runtime.serving_if_loaded
    return {"by_method": by_method, "artifact_bytes": sum(r["total_bytes"] for r in by_method),
            "profiles": profiles, "pools": pools, "pool_bytes": sum(p.nbytes for p in pools),
            "cache_entries": len(serving.cache) if serving else 0,
            "cache_bytes": serving.cache.resident_bytes if serving else 0}


def accuracy(session, limit: int = 100) -> list[dict]:
    rows = session.execute(select(Profile.id, Profile.external_id, Artifact.method, Artifact.metrics,
                                  Artifact.stored_bytes)
                           .join(Artifact, Profile.current_artifact_id == Artifact.id)
                           .order_by(Artifact.created_at.desc()).limit(limit))
    return [{"id": pid, "external_id": ext, "method": method, "accuracy": metrics.get("accuracy"),
             "macro_f1": metrics.get("macro_f1"), "n_holdout": metrics.get("n_holdout"), "stored_bytes": size}
            for pid, ext, method, metrics, size in rows]
