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
        raise NotTrained(f"profile {profile.id} has no trained artifact (state: {profile_status(session, profile=profile)})")
    pool_row = repo.get_pool(session, pool_hash=artifact.pool_hash) if artifact.pool_hash else None
    engine = cache.engine_for(pool_row)
    return engine.load(artifact.payload), engine, artifact
