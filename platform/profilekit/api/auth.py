"""API keys: `pk_…` strings shown once, stored as sha256 hashes, each with a tenant and a role."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from profilekit.store.models import ApiKey

ROLES = ("admin", "client")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session, *, tenant: str, role: str, name: str | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    key = "pk_" + secrets.token_urlsafe(24)
    session.add(ApiKey(key_hash=hash_key(key), tenant=tenant, role=role, name=name))
    session.commit()
    return key


def find_key(session, key: str) -> ApiKey | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    return row if row is not None and row.revoked_at is None else None


def has_admin(session) -> bool:
    return session.scalar(select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None))) is not None
