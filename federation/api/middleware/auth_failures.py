"""Failed authentications, limited per client address.

Every ``401`` spends a token of the client address's bucket
(``FEDERATION_RATE_LIMIT_AUTH_FAILURES``). While that bucket is empty, a request on a
path that authenticates is answered ``429`` at once unless its API key authenticates:
**a valid key is never refused for what others at its address did**, and behind a
proxy (or a NAT) many callers share an address. Requests that authenticate spend
nothing, and paths that need no key (discovery, JWKS, health, the API documents) are
never refused, so a load balancer's health checks from a blocked address still pass.

Why a blocked address's keys are still looked up: API keys are 256-bit random secrets,
so no number of guesses finds one; the lockout sheds the load and the noise of callers
that keep failing, it does not guard the keys. A blocked request costs no more than the
cheapest check that tells a valid key from the rest: the key's shape (what cannot be a
key is refused with no lookup), its SHA-256, and one read of the key by that digest,
the read a ``401`` costs anyway, through the issuing port's bounded connections. The
body is never read, no run is read and nothing is written. And a blocked caller learns
nothing new: a missing, malformed, unknown, expired or deleted key gets the same ``429``
as every other request from the address, and a valid key the answer it would get at
any time.

The address is :func:`client_address`: the TCP peer's, or the client's behind the
trusted proxies of ``FEDERATION_TRUSTED_PROXIES``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from fastapi import Request
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from federation.api.middleware.client_address import client_address
from federation.api.middleware.size_limits import send_problem
from federation.api.problems import error_response
from federation.clock import Clock
from federation.errors import AuthenticationRequired, RateLimited
from federation.rate_limits import RateLimit
from federation.registry.auth import checked_key, presented_digest

# Every path that authenticates: the REST API and GraphQL.
AUTHENTICATED = ("/api/", "/graphql")

# Whether a presented API key (``None``: none) authenticates; reads, never writes.
KeyCheck = Callable[[str | None], Awaitable[bool]]


class KeyReader(Protocol):
    """What the check reads: the issuing port's key read (``IssueStore.caller``)."""

    async def caller(self, digest: str) -> Any: ...


def key_check(store: KeyReader, clock: Clock) -> KeyCheck:
    """The check every route makes of a key (``presented_digest``, the key read by its
    digest, ``checked_key``), without what authenticating also does (``last_used_at``)."""

    async def authenticates(presented: str | None) -> bool:
        try:
            digest = presented_digest(presented)  # NOTE: no lookup for what is no key
            checked_key(await store.caller(digest), digest, clock.now())
        except AuthenticationRequired:
            return False
        return True

    return authenticates


class AuthFailureLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit: RateLimit, authenticates: KeyCheck) -> None:
        self.app = app
        self.limit = limit
        self.authenticates = authenticates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guarded = (
            scope["type"] == "http"
            and self.limit.rate is not None
            and scope["path"].startswith(AUTHENTICATED)
        )
        if not guarded:
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        try:
            self.limit.check(address)
        except RateLimited as refusal:
            try:
                valid = await self.authenticates(presented_key(scope))
            except Exception as exc:  # NOTE: the store's errors, as the handlers answer them
                await error_response(exc, Request(scope, receive))(scope, receive, send)
                return
            if not valid:
                await send_problem(scope, send, refusal)
                return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.limit.charge(address)
            await send(message)

        await self.app(scope, receive, counted)


def presented_key(scope: Scope) -> str | None:
    """The API key of ``Authorization: Bearer``, read as every route reads it (the
    first such header, the scheme in any case, the rest stripped); ``None``: none."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, credentials = get_authorization_scheme_param(value.decode("latin-1"))
            return credentials if scheme.lower() == "bearer" and credentials else None
    return None
