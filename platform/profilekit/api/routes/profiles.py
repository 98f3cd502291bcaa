from __future__ import annotations

from fastapi import APIRouter, Query, Response

from profilekit.api.deps import CurrentKey, RuntimeDep, SessionDep
from profilekit.api.openapi import errors
from profilekit.api.schemas import ArtifactVersion, ProfileCreate, ProfileOut, ProfilePage
from profilekit.api.services import profiles as service

router = APIRouter(prefix="/profiles", tags=["profiles"])


@router.post("", status_code=201, response_model=ProfileOut, responses=errors(409))
def create_profile(body: ProfileCreate, session: SessionDep, caller: CurrentKey) -> ProfileOut:
    """A new profile of the caller's tenant; 409 when its external_id is taken."""
    return service.profile_out(session, service.create_profile(session, caller, body))


@router.get("/{profile_id}", response_model=ProfileOut, responses=errors(404))
def get_profile(profile_id: str, session: SessionDep, caller: CurrentKey) -> ProfileOut:
    return service.profile_out(session, service.visible_profile(session, caller, profile_id))


@router.get("", response_model=ProfilePage)
def list_profiles(session: SessionDep, caller: CurrentKey, cursor: str | None = Query(None, max_length=64),
                  limit: int = Query(50, ge=1, le=500)) -> ProfilePage:
    """Profiles in a stable order; pass `next_cursor` back as `cursor` for the next page."""
    return service.list_profiles(session, caller, cursor=cursor, limit=limit)


@router.delete("/{profile_id}", status_code=204, responses=errors(404))
def delete_profile(profile_id: str, session: SessionDep, caller: CurrentKey, runtime: RuntimeDep) -> Response:
    service.delete_profile(session, caller, profile_id, runtime)
    return Response(status_code=204)


@router.get("/{profile_id}/artifacts", response_model=list[ArtifactVersion], responses=errors(404))
def list_artifacts(profile_id: str, session: SessionDep, caller: CurrentKey) -> list[ArtifactVersion]:
    """Every artifact version of the profile (one per training job), newest first; `current` marks the one
    predictions use."""
    return service.artifact_versions(session, caller, profile_id)


@router.post("/{profile_id}/artifacts/{artifact_id}/promote", response_model=ProfileOut, responses=errors(404))
def promote_artifact(profile_id: str, artifact_id: str, session: SessionDep, caller: CurrentKey) -> ProfileOut:
    """Make this artifact the profile's current one (e.g. roll back to an earlier version); predictions use
    it from the next request."""
    return service.profile_out(session, service.promote_artifact(session, caller, profile_id, artifact_id))
