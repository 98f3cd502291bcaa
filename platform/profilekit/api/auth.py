"""API keys: `pk_…` strings shown once, stored as sha256 hashes, each with a tenant and a role; the
caller a key makes; and the dashboard's server-side sessions, which name a key and never hold it.

An admin key is an operator of every tenant: it sees and acts on every tenant's profiles, jobs and pools,
and what it creates itself lands in tenant "default". So an admin key has no tenant of its own to choose;
a client key belongs to exactly one tenant and sees only that tenant's data."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from profilekit.errors import ConfigError, NotFound
from profilekit.store.models import ApiKey, KeySession, aware, now

ROLES = ("admin", "client")
ADMIN_TENANT = "default"  # where an admin key's own creations land
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Caller:
    key_id: str
    tenant: str
    role: str
    rows_per_second: float | None = None  # its own predict rate limit; None: the server's default

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def sees(self, tenant: str) -> bool:
        return self.is_admin or tenant == self.tenant


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_key_request(*, tenant: str | None, role: str) -> str:
    """The tenant a new key gets; refuses a role we do not know and an admin key bound to a tenant (an admin
    operates every tenant, so a tenant would promise a limit that is not there)."""
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if role == "admin" and tenant not in (None, ADMIN_TENANT):
        raise ConfigError(f"an admin key operates every tenant, so it takes no tenant (got {tenant!r}); "
                          "make a client key for one tenant instead")
    return tenant or ADMIN_TENANT


def check_rate(rows_per_second: float | None) -> None:
    if rows_per_second is not None and not 0 < rows_per_second < math.inf:
        raise ConfigError(f"rows_per_second must be above 0 and finite (or none for the server's default), "
                          f"got {rows_per_second}")


def create_key(session, *, tenant: str | None = None, role: str, name: str | None = None,
               rows_per_second: float | None = None) -> str:
    key, _ = create_key_row(session, tenant=tenant, role=role, name=name, rows_per_second=rows_per_second)
    return key


def create_key_row(session, *, tenant: str | None = None, role: str, name: str | None = None,
                   rows_per_second: float | None = None) -> tuple[str, ApiKey]:
    """A new key: the key itself (shown once, never stored) and its stored row."""
    tenant = check_key_request(tenant=tenant, role=role)
    check_rate(rows_per_second)
    key = "pk_" + secrets.token_urlsafe(24)
    row = ApiKey(key_hash=hash_key(key), tenant=tenant, role=role, name=name, rows_per_second=rows_per_second)
    session.add(row)
    session.commit()
    return key, row


def bootstrap_admin_key(session, key: str) -> bool:
    """Store `key` as an admin key if the store has no live admin key yet; True when it was stored. Replicas
    starting at once may all try: the key's unique hash lets one of them store it."""
    live_admin = select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None)).limit(1)
    if session.scalar(live_admin) is not None:
        return False
    if session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key))) is not None:
        return False  # stored before and revoked since: revoking it must stay final
    session.add(ApiKey(key_hash=hash_key(key), tenant=ADMIN_TENANT, role="admin", name="bootstrap admin"))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # another process stored the same key first
        return False
    return True


def find_key(session, key: str) -> ApiKey | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    return row if row is not None and row.revoked_at is None else None


def list_keys(session) -> list[ApiKey]:
    """Every key, revoked ones included (with when), oldest first; never a key itself."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def set_rate_limit(session, *, key_id: str, rows_per_second: float | None) -> ApiKey:
    """A key's predict rate limit in rows/s (None: the server's default); API processes apply it to the
    key's next request."""
    check_rate(rows_per_second)
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"unknown key {key_id}")
    row.rows_per_second = rows_per_second
    session.commit()
    return row


def revoke_key(session, *, key_id: str) -> ApiKey:
    """Revoke a key and end its dashboard sessions in the same transaction; revoking twice keeps the
    first time."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"unknown key {key_id}")
    moment = now()
    if row.revoked_at is None:
        row.revoked_at = moment
    session.execute(update(KeySession).where(KeySession.key_id == key_id, KeySession.ended_at.is_(None))
                    .values(ended_at=moment))
    session.commit()
    return row


def start_session(session, *, key: ApiKey, seconds: float = SESSION_SECONDS) -> str:
    """A new dashboard session for a key: returns the cookie's value, a random id only its sha256 of
    which is stored."""
    token = secrets.token_urlsafe(32)
    session.add(KeySession(id_hash=hash_key(token), key_id=key.id, expires_at=now() + timedelta(seconds=seconds)))
    session.commit()
    return token


def end_session(session, token: str) -> None:
    session.execute(update(KeySession).where(KeySession.id_hash == hash_key(token), KeySession.ended_at.is_(None))
                    .values(ended_at=now()))
    session.commit()


def session_key(session, token: str) -> ApiKey | None:
    """The key of a live session: not ended, not expired, its key not revoked."""
    row = session.get(KeySession, hash_key(token))
    if row is None or row.ended_at is not None or aware(row.expires_at) <= now():
        return None
    key = session.get(ApiKey, row.key_id)
    return key if key is not None and key.revoked_at is None else None
