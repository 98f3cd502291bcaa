from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import delete, func, select, update

from profilekit.api.deps import CurrentKey, RuntimeDep, SessionDep
from profilekit.api.schemas import ArtifactInfo, ProfileCreate, ProfileOut, ProfilePage
from profilekit.serving import profile_status
from profilekit.store import repo
from profilekit.store.models import Artifact, Example, Profile

router = APIRouter(prefix="/profiles", tags=["profiles"])


def visible_profile(session, caller, profile_id: str) -> Profile:
    """The caller's profile; another tenant's profile is as unknown as a missing one (404)."""
    profile = session.get(Profile, profile_id)
    if profile is None or not caller.sees(profile.tenant):
        raise HTTPException(404, f"unknown profile {profile_id}")
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
                      status=profile_status(session, profile=profile), examples=examples, labels=profile.labels,
                      artifact=info, created_at=profile.created_at, updated_at=profile.updated_at)


@router.post("", status_code=201, response_model=ProfileOut)
def create_profile(body: ProfileCreate, session: SessionDep, caller: CurrentKey) -> ProfileOut:
    if body.external_id is not None:
        exists = session.scalar(select(Profile).where(Profile.tenant == caller.tenant,
                                                      Profile.external_id == body.external_id))
        if exists is not None:
            raise HTTPException(409, f"external_id {body.external_id!r} already names profile {exists.id}")
    profile = repo.create_profile(session, tenant=caller.tenant, external_id=body.external_id, labels=body.labels)
    session.commit()
    return profile_out(session, profile)


@router.get("/{profile_id}", response_model=ProfileOut)
def get_profile(profile_id: str, session: SessionDep, caller: CurrentKey) -> ProfileOut:
    return profile_out(session, visible_profile(session, caller, profile_id))


@router.get("", response_model=ProfilePage)
def list_profiles(session: SessionDep, caller: CurrentKey, cursor: str | None = Query(None, max_length=64),
                  limit: int = Query(50, ge=1, le=500)) -> ProfilePage:
    """Profiles in a stable order; pass `next_cursor` back as `cursor` for the next page."""
    query = select(Profile).order_by(Profile.id).limit(limit + 1)
    if not caller.is_admin:
        query = query.where(Profile.tenant == caller.tenant)
    if cursor:
        query = query.where(Profile.id > cursor)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return ProfilePage(items=[profile_out(session, p) for p in page],
                       next_cursor=page[-1].id if len(rows) > limit else None)


@router.delete("/{profile_id}", status_code=204)
def delete_profile(profile_id: str, session: SessionDep, caller: CurrentKey, runtime: RuntimeDep) -> Response:
    profile = visible_profile(session, caller, profile_id)
    artifact_ids = list(session.scalars(select(Artifact.id).where(Artifact.profile_id == profile.id)))
    session.execute(update(Profile).where(Profile.id == profile.id).values(current_artifact_id=None))
    session.execute(delete(Artifact).where(Artifact.profile_id == profile.id))
    session.execute(delete(Example).where(Example.profile_id == profile.id))
    session.execute(delete(Profile).where(Profile.id == profile.id))
    session.commit()
    for artifact_id in artifact_ids:
        runtime.cache.evict(artifact_id)
    return Response(status_code=204)
