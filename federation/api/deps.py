"""What route handlers receive: the application context, a session, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from federation.api.middleware.observe import note_caller
from federation.api.upstreams import Upstreams
from federation.clock import Clock
from federation.issuing.pipeline import TokenIssuer
from federation.keys import Keyring
from federation.ledger import Ledger
from federation.registry.auth import Caller, authenticate
from federation.settings import Settings
from federation.store import Store


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    store: Store
    keyring: Keyring
    clock: Clock
    issuer: TokenIssuer
    discovery: bytes
    upstreams: Upstreams
    ledger: Ledger | None = None  # the transparency log; None: off


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


async def get_context(request: Request) -> AppContext:
    """The dependency; async, so that FastAPI resolves it without a thread hop."""
    return context_of(request)


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed when the handler returns, before the
    answer is sent, and rolled back when it raises."""
    session = context_of(request).store.new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer wk-...`")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def presented_key(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials is not None else None


def get_caller(
    request: Request,
    session: Annotated[Session, Depends(get_session, scope="function")],
    credentials: Credentials,
) -> Caller:
    caller = authenticate(session, presented_key(credentials), context_of(request).clock.now())
    note_caller(request.scope, caller)
    return caller


async def get_issuing_caller(request: Request, credentials: Credentials) -> Caller:
    """The caller as the issuing pipeline authenticates it (on the event loop, through
    the issuing port): for the routes that issue or preview tokens."""
    caller = await context_of(request).issuer.authenticate(presented_key(credentials))
    note_caller(request.scope, caller)
    return caller


Context = Annotated[AppContext, Depends(get_context)]
IssuingCaller = Annotated[Caller, Depends(get_issuing_caller)]
DbSession = Annotated[Session, Depends(get_session, scope="function")]
CurrentCaller = Annotated[Caller, Depends(get_caller)]
