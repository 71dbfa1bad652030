"""What route handlers receive: the application context, a session, the caller."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from federation.api.observe import note_caller
from federation.api.upstreams import Upstreams
from federation.auth import Caller, authenticate
from federation.clock import Clock
from federation.issuance import TokenIssuer
from federation.keys import Keyring
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

_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


# The Oz client sends its W3C trace context under a header of its own name.
_TRACE_HEADERS = (b"traceparent", b"x-warp-traceparent")


class TraceMiddleware:
    """Gives every request a trace id: W3C ``traceparent``'s when sent (or the Oz
    client's ``X-Warp-Traceparent``; ``traceparent`` first), else a new one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found: dict[bytes, str] = {}
            for name, value in scope["headers"]:
                if name in _TRACE_HEADERS and name not in found:
                    match = _TRACEPARENT.fullmatch(value.decode("latin-1").strip())
                    if match and match.group(1) != "0" * 32:
                        found[name] = match.group(1)
                    else:
                        found[name] = ""
            trace_id = found.get(b"traceparent") or found.get(b"x-warp-traceparent")
            scope.setdefault("state", {})["trace_id"] = trace_id or secrets.token_hex(16)
        await self.app(scope, receive, send)
