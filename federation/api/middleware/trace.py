"""A trace id for every request, from the caller's W3C trace context when it sent one."""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

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
