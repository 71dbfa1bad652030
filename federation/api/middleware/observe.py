"""What happened to each request, handed to observers (the access log, the metrics)
once its answer has been sent.

The middleware sits outside every other, so that discovery and JWKS, answered before
routing, are observed too. What is known only deep inside (who the caller is, which run
the request is about) travels outward in the ASGI scope's ``state`` dict: the code that
learns it calls :func:`note_caller` or :func:`note_run`, and observers read it with
:func:`noted` when the request is done. Only identifiers are noted, never a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping, Sequence
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from federation.registry.auth import Caller

log = logging.getLogger("federation.api")
PRINCIPAL = "principal"
KEY_ID = "key_id"
RUN_ID = "run_id"
TRACE_ID = "trace_id"


class Observer(Protocol):
    def finished(self, scope: Scope, status: int, seconds: float) -> None:
        """One request is answered (``status`` 500 if nothing was sent); must not raise."""
        ...


def _state(scope: MutableMapping[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def note_caller(scope: MutableMapping[str, Any], caller: Caller) -> None:
    """Record who the request acts as (principal uid and API-key id; never the key)."""
    state = _state(scope)
    state[PRINCIPAL] = caller.principal_uid
    state[KEY_ID] = caller.key_id


def note_run(scope: MutableMapping[str, Any], run_id: str) -> None:
    _state(scope)[RUN_ID] = run_id


def noted(scope: Scope) -> dict[str, Any]:
    """The request's notes (the trace id among them); empty when nothing was noted."""
    state: dict[str, Any] | None = scope.get("state")
    return state if state is not None else {}


class ObserveMiddleware:
    """Times every HTTP request and tells each observer its status once it is answered."""

    def __init__(self, app: ASGIApp, *, observers: Sequence[Observer]) -> None:
        self.app = app
        self.observers = tuple(observers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # NOTE: made here, so that the dict inner layers write to is the one read below
        scope.setdefault("state", {})
        status = 500  # what the server answers when the application sent nothing
        started = time.perf_counter()

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            seconds = time.perf_counter() - started
            for observer in self.observers:
                try:
                    observer.finished(scope, status, seconds)
                except Exception:  # NOTE: never the answer's failure, nor masking one
                    log.exception("observing a request failed")
