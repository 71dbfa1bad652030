"""The web console at ``/console``: API keys, runs, signing keys, issued tokens, a dry
run of a token and the transparency log, server-rendered, signed in with an API key.

The console is a separate application mounted into the API's: it answers nothing on the
API's paths and adds nothing to the token path. Everything it shows or changes goes
through the public ``/api/v1`` endpoints as the signed-in key (see
:mod:`federation.console.api_client`).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from federation.clock import Clock, SystemClock
from federation.console import (
    api_keys,
    runs,
    sign_in,
    signing_keys,
    tokens,
    transparency,
    try_it,
)
from federation.console.headers import SecurityHeadersMiddleware
from federation.console.sessions import COOKIE_PATH, SessionCodec, SessionStore
from federation.console.web import Console, console_of, render, session_of, templates
from federation.errors import FederationError, MethodNotAllowed, ResourceNotFound

STATIC = Path(__file__).parent / "static"


async def http_error(request: Request, exc: Exception) -> Response:
    """No such page, or not with that method: the console's error page, not plain text."""
    status = getattr(exc, "status_code", 404)
    error: FederationError = (
        MethodNotAllowed(f"{request.method} is not how {request.url.path} is used")
        if status == 405
        else ResourceNotFound(f"there is no console page at {request.url.path}")
    )
    return render(request, console_of(request), "error.html", error.status, error=error)


async def home(request: Request) -> Response:
    signed_in = await session_of(request, console_of(request)) is not None
    return RedirectResponse(f"{COOKIE_PATH}/{'api-keys' if signed_in else 'sign-in'}", 303)


def console_app(
    api_app: ASGIApp,
    *,
    secret: bytes,
    issuer: str,
    sessions: SessionStore,
    clock: Clock | None = None,
) -> Starlette:
    """The console, calling ``api_app`` (the whole application) in process, keeping its
    sessions in ``sessions`` (the server's record, checked on every request), reading
    the time from ``clock`` (default: the system's)."""
    routes = [
        Route("/", home),
        Route("/sign-in", sign_in.sign_in_form, methods=["GET"]),
        Route("/sign-in", sign_in.sign_in, methods=["POST"]),
        Route("/sign-out", sign_in.sign_out, methods=["POST"]),
        Route("/sign-out-everywhere", sign_in.confirm_sign_out_everywhere, methods=["GET"]),
        Route("/sign-out-everywhere", sign_in.sign_out_everywhere, methods=["POST"]),
        Route("/api-keys", api_keys.list_keys, methods=["GET"]),
        Route("/api-keys", api_keys.create_key, methods=["POST"]),
        Route("/api-keys/{key_id}/delete", api_keys.confirm_delete, methods=["GET"]),
        Route("/api-keys/{key_id}/delete", api_keys.delete_key, methods=["POST"]),
        Route("/runs", runs.list_runs, methods=["GET"]),
        Route("/runs/{run_id}", runs.show_run, methods=["GET"]),
        Route("/signing-keys", signing_keys.list_signing_keys, methods=["GET"]),
        Route("/signing-keys/rotate", signing_keys.rotate, methods=["POST"]),
        Route("/tokens", tokens.list_tokens, methods=["GET"]),
        Route("/try", try_it.try_it, methods=["GET"]),
        Route("/log", transparency.show_log, methods=["GET"]),
        Route("/log", transparency.prove_token, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeadersMiddleware)],
        exception_handlers={404: http_error, 405: http_error},
    )
    app.state.console = Console(
        api_app=api_app,
        codec=SessionCodec(secret),
        sessions=sessions,
        templates=templates(),
        # NOTE: a public issuer is https; its console cookies must never travel in clear.
        secure_cookies=issuer.startswith("https://"),
        clock=clock or SystemClock(),
    )
    return app
