"""Failed authentications, limited per client address.

Every ``401`` spends a token of the client address's bucket
(``FEDERATION_RATE_LIMIT_AUTH_FAILURES``); while that bucket is empty, the address is
answered ``429`` before its API key is even looked up, valid key or not. Requests that
authenticate spend nothing, and paths that need no key (discovery, JWKS, health, the
API documents) are never refused, so a load balancer's health checks from a blocked
address still pass.

The address is the TCP peer's: behind a proxy, every client of the proxy shares it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from federation.api.middleware.size_limits import send_problem
from federation.errors import RateLimited
from federation.rate_limits import RateLimit

# Every path that authenticates: the REST API and GraphQL.
AUTHENTICATED = ("/api/", "/graphql")


class AuthFailureLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit: RateLimit) -> None:
        self.app = app
        self.limit = limit

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
        except RateLimited as error:
            await send_problem(scope, send, error)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.limit.charge(address)
            await send(message)

        await self.app(scope, receive, counted)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
