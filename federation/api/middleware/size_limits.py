"""Request size limits, enforced before anything reads or parses a body.

FastAPI parses a JSON body before any dependency (such as API-key authentication) runs,
so without a limit anyone could make the issuer read and parse megabytes per request,
stalling the discovery and JWKS documents that the clouds fetch with a 5-second timeout.
Headers are held to a total size too (``431``): every request's headers are scanned,
and no client of the issuer sends more than a few hundred bytes of them.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from federation.errors import FederationError, HeadersTooLarge, RequestTooLarge

PROBLEM_JSON = b"application/problem+json"


class BodyLimitMiddleware:
    """Answers ``413`` to bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            # The server delivers no more than the declared length.
            if declared > self.limit:
                await self._refuse(scope, send)
                return
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read the body within the limit, then replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = RequestTooLarge(f"the request body may not exceed {self.limit} bytes")
        await send_problem(scope, send, error, close=True)


class HeaderLimitMiddleware:
    """Answers ``431`` to requests whose header names and values exceed ``limit`` bytes
    together, before anything reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) for name, value in scope["headers"])
            if size > self.limit:
                error = HeadersTooLarge(f"the request headers may not exceed {self.limit} bytes")
                await send_problem(scope, send, error, close=True)
                return
        await self.app(scope, receive, send)


async def send_problem(
    scope: Scope, send: Send, error: FederationError, *, close: bool = False
) -> None:
    """Answer ``error`` as ``application/problem+json`` from an ASGI middleware, as the
    application's handlers answer it (``close``: the rest of the request is unread)."""
    state = scope.get("state") or {}
    body = orjson.dumps(error.problem(instance=scope["path"], trace_id=state.get("trace_id")))
    headers = [
        (b"content-type", PROBLEM_JSON),
        (b"content-length", str(len(body)).encode()),
        *(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in error.headers.items()
        ),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
