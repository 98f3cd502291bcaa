"""Profiles: visibility (another tenant's profile is as unknown as a missing one), creation, pages,
deletion, artifact versions and promoting one of them back (a rollback)."""

from __future__ import annotations

from sqlalchemy import func, select

from profilekit.api.auth import Caller
from profilekit.api.schemas import ArtifactInfo, ArtifactVersion, ProfileCreate, ProfileOut, ProfilePage
from profilekit.api.services import retry_lost_race
from profilekit.errors import Conflict, NotFound
from profilekit.store import repo
from profilekit.store.models import Example, Profile


def visible_profile(session, caller: Caller, profile_id: str) -> Profile:
    profile = session.get(Profile, profile_id)
    if profile is None or not caller.sees(profile.tenant):
        raise NotFound(f"unknown profile {profile_id}")
    return profile


def profile_out(session, profile: Profile) -> ProfileOut:
    artifact = repo.current_artifact(session, profile=profile)
    examples = session.scalar(select(func.count()).select_from(Example).where(Example.profile_id == profile.id))
    info = None
    if artifact is not None:
        info = ArtifactInfo(id=artifact.id, method=artifact.method, pool_hash=artifact.pool_hash,
                            payload_bytes=artifact.payload_bytes, stored_bytes=artifact.stored_bytes,
                            metrics=artifact.metrics, created_at=artifact.created_at)
    return ProfileOut(id=profile.id, external_id=profile.external_id, tenant=profile.tenant,
                      status=repo.profile_status(session, profile=profile), examples=examples, labels=profile.labels,
                      artifact=info, created_at=profile.created_at, updated_at=profile.updated_at)


def create_profile(session, caller: Caller, body: ProfileCreate) -> Profile:
    """A new profile; Conflict (409) when the tenant's external_id is taken, also by a concurrent request."""
    def write(session) -> Profile:
        if body.external_id is not None:
            exists = session.scalar(select(Profile).where(Profile.tenant == caller.tenant,
                                                          Profile.external_id == body.external_id))
            if exists is not None:
                raise Conflict(f"external_id {body.external_id!r} already names profile {exists.id}")
        profile = repo.create_profile(session, tenant=caller.tenant, external_id=body.external_id,
                                      labels=body.labels)
        session.commit()
        return profile

    return retry_lost_race(session, write)


def list_profiles(session, caller: Caller, *, cursor: str | None, limit: int) -> ProfilePage:
    """Profiles in a stable order; `next_cursor` continues after the last one."""
    query = select(Profile).order_by(Profile.id).limit(limit + 1)
    if not caller.is_admin:
        query = query.where(Profile.tenant == caller.tenant)
    if cursor:
        query = query.where(Profile.id > cursor)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return ProfilePage(items=[profile_out(session, p) for p in page],
                       next_cursor=page[-1].id if len(rows) > limit else None)


def delete_profile(session, caller: Caller, profile_id: str, runtime) -> None:
    """Delete the profile, its examples and artifacts, and drop its states from this process's cache."""
    artifact_ids = repo.delete_profile(session, profile=visible_profile(session, caller, profile_id))
    session.commit()
    serving = runtime.serving_if_loaded
    if serving is not None:
        for artifact_id in artifact_ids:
            serving.cache.evict(artifact_id)


def artifact_versions(session, caller: Caller, profile_id: str) -> list[ArtifactVersion]:
    """Every artifact stored for the profile, newest first, the current one marked."""
    profile = visible_profile(session, caller, profile_id)
    return [ArtifactVersion(id=a.id, job_id=a.job_id, method=a.method, pool_hash=a.pool_hash,
                            payload_bytes=a.payload_bytes, stored_bytes=a.stored_bytes, metrics=a.metrics,
                            created_at=a.created_at, current=a.id == profile.current_artifact_id)
            for a in repo.list_artifacts(session, profile_id=profile.id)]


def promote_artifact(session, caller: Caller, profile_id: str, artifact_id: str) -> Profile:
    """Make an earlier (or any) artifact of the profile its current one. Predictions follow at once: the
    serving loader reads the current artifact id per request and caches states by artifact id."""
    profile = visible_profile(session, caller, profile_id)
    repo.promote_artifact(session, profile=profile, artifact_id=artifact_id)
    session.commit()
    return profile
