"""API keys: `pk_…` strings shown once, stored as sha256 hashes, each with a tenant and a role; and
the caller a key makes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from profilekit.store.models import ApiKey

ROLES = ("admin", "client")


@dataclass(frozen=True)
class Caller:
    key_id: str
    tenant: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def sees(self, tenant: str) -> bool:
        return self.is_admin or tenant == self.tenant


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
