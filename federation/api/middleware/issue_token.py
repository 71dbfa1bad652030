"""issue-token handed to its route's endpoint without the router."""

from __future__ import annotations

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from federation.api.problems import error_response
from federation.api.routes.federate import ISSUE_PATH, issue_token


class IssueTokenShortcut:
    """Hands ``POST /api/v1/federate/issue-token`` to its route's own endpoint,
    :func:`issue_token`, without the router: every run starts with this request, and
    routing and the framework's per-route layers cost as much as the pipeline's reads
    (measured in process). The endpoint and its error answers are the route's; nothing
    here decides anything. Other methods on the path go to the router (405)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != ISSUE_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await issue_token(request)
        except Exception as exc:  # NOTE: answered as the installed handlers answer it
            response = error_response(exc, request)
        await response(scope, receive, send)
