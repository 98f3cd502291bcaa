"""API keys, for admins: list them (never the keys themselves), make one (shown once), revoke one (its
API calls get 401 and its dashboard sessions end at once)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from profilekit.api import auth
from profilekit.api.deps import AdminKey, SessionDep
from profilekit.api.openapi import errors
from profilekit.api.schemas import KeyCreate, KeyCreated, KeyOut

router = APIRouter(prefix="/keys", tags=["keys"])


def key_out(row) -> KeyOut:
    return KeyOut(id=row.id, tenant=row.tenant, role=row.role, name=row.name, created_at=row.created_at,
                  revoked_at=row.revoked_at, rows_per_second=row.rows_per_second)


@router.get("", response_model=list[KeyOut])
def list_keys(session: SessionDep, caller: AdminKey) -> list[KeyOut]:
    """Every key with its tenant, role and whether it is revoked, oldest first."""
    return [key_out(row) for row in auth.list_keys(session)]


@router.post("", status_code=201, response_model=KeyCreated)
def create_key(body: KeyCreate, session: SessionDep, caller: AdminKey) -> KeyCreated:
    """A new key; the answer is the only place the key itself is ever shown."""
    key, row = auth.create_key_row(session, tenant=body.tenant, role=body.role, name=body.name,
                                   rows_per_second=body.rows_per_second)
    return KeyCreated(key=key, **key_out(row).model_dump())


@router.delete("/{key_id}", status_code=204, responses=errors(404))
def revoke_key(key_id: str, session: SessionDep, caller: AdminKey) -> Response:
    """Revoke a key: from now on it gets 401, and dashboards signed in with it are signed out."""
    auth.revoke_key(session, key_id=key_id)
    return Response(status_code=204)
