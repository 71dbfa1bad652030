"""The discovery and JWKS documents, answered before routing."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from federation.api.deps import AppContext
from federation.api.routes.wellknown import (
    DISCOVERY_PATH,
    JWKS_PATH,
    discovery_response,
    jwks_response,
)


class DocumentsMiddleware:
    """Answers GET and HEAD for the discovery and JWKS documents before the framework
    routes anything: the clouds fetch them on every exchange they have not cached, and
    routing and dependency resolution cost more than the answer (the performance note).
    The routes above answer the same, for the OpenAPI document and any other method."""

    def __init__(self, app: ASGIApp, *, context: AppContext, prefixes: Iterable[str]) -> None:
        self.app = app
        self.context = context
        self.discovery = {f"{prefix}{DISCOVERY_PATH}" for prefix in prefixes}
        self.jwks = {f"{prefix}{JWKS_PATH}" for prefix in prefixes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path = scope["path"]
            if path in self.discovery:
                await discovery_response(self.context)(scope, receive, send)
                return
            if path in self.jwks:
                if_none_match = next(
                    (v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"),
                    "",
                )
                await (await jwks_response(self.context, if_none_match))(scope, receive, send)
                return
        await self.app(scope, receive, send)
