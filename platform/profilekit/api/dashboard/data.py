"""What the dashboard shows, read from the database and the API process. Every query is bounded or
grouped, so a page costs the same with a million profiles as with ten: totals are GROUP BYs, lists are
top-N or keyset pages."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import case, func, select

from profilekit.store import repo
from profilekit.store.models import JOB_STATES, Artifact, Job, Pool, Profile, aware

BUCKETS = (256, 1024, 4096, 16384, 65536, 262144)  # upper bounds of the bytes-per-profile histogram
PAGE = 50  # profiles per page


def age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else (now - aware(moment)).total_seconds()


def queue(session) -> dict:
    by_state = dict(session.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    running = list(session.scalars(select(Job).where(Job.state == "running").order_by(Job.started_at)))
    recent = list(session.scalars(select(Job).order_by(Job.created_at.desc()).limit(20)))
    return {"by_state": {s: by_state.get(s, 0) for s in JOB_STATES}, "running": running, "recent": recent}


def workers(session, *, stale_seconds: float, now: datetime) -> list[dict]:
    """Each worker's liveness (alive: a heartbeat within `stale_seconds`; lost: none since; stopped: shut
    down cleanly) and the job it runs, with that job's own heartbeat age."""
    running = {j.worker: j for j in session.scalars(select(Job).where(Job.state == "running"))}
    rows = []
    for worker in repo.list_workers(session):
        beat = age(worker.heartbeat_at, now)
        state = "stopped" if worker.stopped_at else "alive" if beat <= stale_seconds else "lost"
        rows.append({"name": worker.name, "state": state, "heartbeat_age": beat,
                     "started_at": aware(worker.started_at), "job": running.pop(worker.name, None)})
    for name, job in running.items():  # a running job whose worker never beat (or whose row is gone)
        rows.append({"name": name or "?", "state": "unknown", "heartbeat_age": None, "started_at": None,
                     "job": job})
    return rows


def is_current():
    """Artifacts that are some profile's current one: walked from an artifacts index (by size, by time),
    each checked through ix_profiles_current_artifact_id, so a top-N reads N rows, not every profile."""
    return select(Profile.id).where(Profile.current_artifact_id == Artifact.id).exists()


def current_artifacts(session, order, limit: int) -> list:
    """(profile id, external id, tenant, artifact) of the first `limit` current artifacts by `order`."""
    ids = list(session.scalars(select(Artifact.id).where(is_current()).order_by(order).limit(limit)))
    rows = session.execute(select(Profile.id, Profile.external_id, Profile.tenant, Artifact)
                           .join(Artifact, Profile.current_artifact_id == Artifact.id).where(Artifact.id.in_(ids)))
    rank = {artifact_id: i for i, artifact_id in enumerate(ids)}
    return sorted(rows, key=lambda row: rank[row[3].id])


def grouped_bytes(session, runtime, max_age: float) -> tuple[list, float]:
    """(method, tenant, histogram bucket, profiles, bytes) of every current artifact: one grouped scan of
    all profiles, so it is kept for `max_age` seconds (a dashboard refreshing every 5 s over a million
    profiles would otherwise scan them all each time); also returns its age in seconds."""
    cached = runtime.dashboard_cache.get("grouped_bytes")
    if cached is not None and time.monotonic() - cached[0] < max_age:
        return cached[1], time.monotonic() - cached[0]
    size = Artifact.stored_bytes
    bucket = case(*[(size < bound, i) for i, bound in enumerate(BUCKETS)], else_=len(BUCKETS))
    groups = session.execute(select(Artifact.method, Profile.tenant, bucket, func.count(), func.sum(size))
                             .join(Profile, Profile.current_artifact_id == Artifact.id)
                             .group_by(Artifact.method, Profile.tenant, bucket)).all()
    runtime.dashboard_cache["grouped_bytes"] = (time.monotonic(), groups)
    return groups, 0.0


def memory(session, runtime, *, max_age: float = 30.0) -> dict:
    """Stored bytes of current artifacts by method, by tenant and as a histogram (one grouped scan, at most
    `max_age` seconds old), the largest profiles, the pools and this process's artifact cache."""
    groups, groups_age = grouped_bytes(session, runtime, max_age)

    def totals(index: int) -> list[dict]:
        sums: dict[str, list[int]] = {}
        for row in groups:
            entry = sums.setdefault(row[index], [0, 0])
            entry[0], entry[1] = entry[0] + row[3], entry[1] + int(row[4])
        return [{"key": key, "profiles": n, "total_bytes": total, "mean_bytes": total / n}
                for key, (n, total) in sorted(sums.items())]

    counts = [sum(row[3] for row in groups if row[2] == i) for i in range(len(BUCKETS) + 1)]
    top = current_artifacts(session, Artifact.stored_bytes.desc(), 10)
    pools = list(session.scalars(select(Pool).order_by(Pool.created_at)))
    defaults = repo.pool_defaults(session)
    serving = runtime.serving_if_loaded
    cache = serving.cache if serving else None
    return {"by_method": totals(0), "by_tenant": totals(1), "artifact_bytes": sum(int(row[4]) for row in groups),
            "trained": sum(row[3] for row in groups),
            "profiles": session.scalar(select(func.count()).select_from(Profile)),
            "histogram": [(BUCKETS[i - 1] if i else 0, BUCKETS[i] if i < len(BUCKETS) else None, counts[i])
                          for i in range(len(BUCKETS) + 1)],
            "top": [{"id": pid, "external_id": ext, "tenant": tenant, "method": a.method,
                     "stored_bytes": a.stored_bytes} for pid, ext, tenant, a in top], "totals_age": groups_age,
            "pools": [{"pool": p, "default_for": defaults.get(p.pool_hash, []),
                       "built_from": built_from(session, p.built_from or [])} for p in pools],
            "pool_bytes": sum(p.nbytes for p in pools),
            "cache_entries": len(cache) if cache else 0, "cache_bytes": cache.resident_bytes if cache else 0,
            "cache_hits": cache.hits if cache else 0, "cache_misses": cache.misses if cache else 0,
            "cache_evictions": cache.evictions if cache else 0, "cache_not_kept": cache.not_kept if cache else 0,
            "cache_budget": cache.max_bytes if cache else 0, "cache_pinned": len(cache.pinned_profiles) if cache else 0,
            "cache_pinned_bytes": cache.pinned_bytes if cache else 0}


def built_from(session, ids: list[str], shown: int = 5) -> dict:
    """What a warm pool was trained on: how many profiles, and the first few by external id (or id)."""
    names = dict(session.execute(select(Profile.id, Profile.external_id).where(Profile.id.in_(ids[:shown]))).all())
    return {"count": len(ids), "first": [names.get(i) or i for i in ids[:shown]]}


def profiles_page(session, *, search: str = "", after: str = "", limit: int = PAGE) -> dict:
    """One page of profiles in id order after `after`, those whose external id contains `search`
    (case-insensitive); `next` is the id to continue after, None on the last page."""
    query = (select(Profile.id, Profile.external_id, Profile.tenant, Artifact.method, Artifact.stored_bytes,
                    Artifact.metrics, Artifact.created_at)
             .outerjoin(Artifact, Profile.current_artifact_id == Artifact.id).order_by(Profile.id).limit(limit + 1))
    if search:
        query = query.where(Profile.external_id.ilike(f"%{search}%"))
    if after:
        query = query.where(Profile.id > after)
    rows = session.execute(query).all()
    keys = ("id", "external_id", "tenant", "method", "stored_bytes", "metrics", "trained_at")
    items = [dict(zip(keys, row, strict=True)) for row in rows[:limit]]
    return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}


def regressions(session, *, drop: float = 0.1, recent: int = 200) -> list[dict]:
    """Profiles among the `recent` latest trained whose current artifact's holdout accuracy is lower than
    their previous artifact's by more than `drop` (absolute), worst first."""
    latest = [(pid, ext, tenant, a.id) for pid, ext, tenant, a in
              current_artifacts(session, Artifact.created_at.desc(), recent)]
    history: dict[str, list] = {}
    for artifact in session.scalars(select(Artifact).where(Artifact.profile_id.in_([r[0] for r in latest]))
                                    .order_by(Artifact.created_at, Artifact.id)):
        history.setdefault(artifact.profile_id, []).append(artifact)
    flagged = []
    for profile_id, external_id, tenant, current_id in latest:
        versions = history.get(profile_id, [])
        index = next((i for i, a in enumerate(versions) if a.id == current_id), 0)
        if index == 0:
            continue
        before, now = versions[index - 1].metrics.get("accuracy"), versions[index].metrics.get("accuracy")
        if isinstance(before, (int, float)) and isinstance(now, (int, float)) and before - now > drop:
            flagged.append({"id": profile_id, "external_id": external_id, "tenant": tenant, "method":
                            versions[index].method, "before": before, "now": now, "artifact_id": current_id,
                            "previous_id": versions[index - 1].id})
    return sorted(flagged, key=lambda r: r["now"] - r["before"])
