"""Dependencies: the runtime, a database session, and the caller's API key (Bearer or dashboard cookie)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from profilekit.api.auth import Caller, find_key, session_key
from profilekit.api.runtime import Runtime

COOKIE = "profilekit_session"


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def key_from_request(request: Request, session: Session) -> Caller | None:
    """The caller of a Bearer key, else of a live dashboard session cookie, else None."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        row = find_key(session, header[7:].strip())
    else:
        token = request.cookies.get(COOKIE)
        row = session_key(session, token) if token else None
    return Caller(row.id, row.tenant, row.role, row.rows_per_second) if row is not None else None


def current_caller(request: Request, runtime: RuntimeDep) -> Caller:
    # a session of its own, closed at once: a request must not hold a pooled connection for its whole
    # life (predict waits on the batcher and takes another connection to look profiles up)
    with runtime.sessions() as session:
        caller = key_from_request(request, session)
    if caller is None:
        raise HTTPException(401, "missing or invalid API key (send 'Authorization: Bearer <key>')",
                            headers={"WWW-Authenticate": "Bearer"})
    return caller


CurrentKey = Annotated[Caller, Depends(current_caller)]


def admin_caller(caller: CurrentKey) -> Caller:
    if not caller.is_admin:
        raise HTTPException(403, "this needs an admin key")
    return caller


AdminKey = Annotated[Caller, Depends(admin_caller)]
