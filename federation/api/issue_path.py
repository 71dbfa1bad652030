"""``POST /api/v1/federate/issue-token`` answered before the framework routes it.

Every run starts with this request. Through FastAPI's routing, dependency resolution
and response validation it cost as much again as issuing itself (the performance note:
about 0.5 ms of 1.2 ms in process). A well-formed request (one JSON body, which
``IssueTokenBody`` accepts, and no repeated header) is answered here with the same
model, the same issuing code and the same problem bodies; anything else goes on to the
route, which refuses it exactly as before. The trace and body-size middlewares run
first, as for every request.
"""

from __future__ import annotations

from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from federation.api.deps import AppContext
from federation.api.federate import ISSUE_PATH, issue_request, issued_response
from federation.api.problems import as_federation_error, problem_response
from federation.api.schemas import IssueTokenBody

_WANTED = {
    b"content-type": "content_type",
    b"authorization": "authorization",
    b"x-warp-ambient-workload-token": "workload_token",
    b"x-warp-team-uid": "team_uid",
}


class IssueTokenMiddleware:
    def __init__(self, app: ASGIApp, *, context: AppContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != ISSUE_PATH:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        body, rest = await _whole_body(receive)
        if headers is None or headers.get("content_type") != "application/json" or rest:
            await self.app(scope, _replay(body, rest, receive), send)
            return
        try:
            parsed = IssueTokenBody.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replay(body, rest, receive), send)
            return
        trace = (scope.get("state") or {}).get("trace_id")
        scheme, credentials = get_authorization_scheme_param(headers.get("authorization"))
        presented = credentials if scheme.lower() == "bearer" and credentials else None
        wanted = issue_request(
            trace, parsed, headers.get("workload_token"), headers.get("team_uid")
        )
        try:
            response = await issued_response(self.context, presented, wanted, scope)
        except Exception as exc:  # NOTE: answered as the framework's handlers answer it
            response = problem_response(as_federation_error(exc, trace), Request(scope))
        await response(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str] | None:
    """The headers issuing reads; ``None`` if one is repeated (the route decides)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = _WANTED.get(name)
        if key is not None:
            if key in found:
                return None
            found[key] = value.decode("latin-1")
    return found


async def _whole_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The request body, and any message that was not part of it (a disconnect)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


def _replay(body: bytes, rest: list[Message], receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *rest]

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
