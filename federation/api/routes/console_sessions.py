"""Console sessions: the admin's "sign out everywhere", and the console's session store.

``POST /api/v1/console-sessions/revoke`` (admin) ends every console session now, or
every one of a principal (``{"principal_uid": ...}``); API keys are untouched. The
console keeps its sessions through :class:`StoreSessions`, the registry's
:mod:`~federation.registry.console_sessions` on the application's store and clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TypeVar

import anyio.to_thread
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from federation.api.deps import Context, CurrentCaller, DbSession
from federation.api.openapi import problems
from federation.api.problems import database_unavailable
from federation.api.schemas import Identifier, Strict
from federation.clock import Clock
from federation.console.sessions import SESSION_LIFETIME
from federation.registry import console_sessions
from federation.registry import principals as accounts
from federation.registry.auth import Scope
from federation.store import Store

router = APIRouter(prefix="/api/v1/console-sessions", tags=["console-sessions"])
log = logging.getLogger("federation.api")

T = TypeVar("T")


class RevokeSessions(Strict):
    principal_uid: Identifier | None = None


class SessionsRevoked(BaseModel):
    revoked: int
    principal_uid: str | None


@router.post(
    "/revoke",
    summary="Sign out everywhere: end console sessions now",
    responses=problems(403, 404),
)
def revoke_sessions(
    context: Context,
    session: DbSession,
    caller: CurrentCaller,
    body: RevokeSessions | None = None,
) -> SessionsRevoked:
    caller.require(Scope.ADMIN)
    uid = body.principal_uid if body is not None else None
    if uid is not None:
        accounts.get_principal(session, uid)  # a typo is a 404, not "0 sessions ended"
    ended = console_sessions.end_all(session, now=context.clock.now(), principal_uid=uid)
    return SessionsRevoked(revoked=ended, principal_uid=uid)


class StoreSessions:
    """The console's :class:`~federation.console.sessions.SessionStore` on a store: each
    call in a worker thread (the database calls block), times from ``clock``."""

    def __init__(
        self, store: Store, clock: Clock, lifetime: timedelta = timedelta(seconds=SESSION_LIFETIME)
    ) -> None:
        self._store = store
        self._clock = clock
        self._lifetime = lifetime

    async def begin(self, session_id: str, api_key: str) -> None:
        work = partial(
            console_sessions.begin,
            session_id=session_id,
            api_key=api_key,
            now=self._clock.now(),
            lifetime=self._lifetime,
        )
        await anyio.to_thread.run_sync(self._write, work)

    async def is_live(self, session_id: str, api_key: str) -> bool:
        work = partial(
            console_sessions.is_live, session_id=session_id, api_key=api_key, now=self._clock.now()
        )
        return await anyio.to_thread.run_sync(self._read, work)

    async def end(self, session_id: str) -> None:
        work = partial(console_sessions.end, session_id=session_id, now=self._clock.now())
        await anyio.to_thread.run_sync(self._write, work)

    def _read(self, work: Callable[[Session], T]) -> T:
        # NOTE: no commit: a read takes no write lock (SQLite's is one per database).
        try:
            with self._store.new_session() as session:
                return work(session)
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc

    def _write(self, work: Callable[[Session], T]) -> T:
        try:
            with self._store.session() as session:
                return work(session)
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: SQLAlchemyError) -> Exception:
    log.error("database error in a console session: %s", type(exc).__name__)
    return database_unavailable()
