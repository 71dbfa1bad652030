"""What every console page shares: the signed-in session, the API client, CSRF, the
templates, and readable errors.

A page handler is an ``async def (request, view) -> Response`` wrapped in :func:`page`:
without a live session (a cookie that opens, of a session the server still holds as
live) it redirects to the sign-in page; with one, ``view.api`` calls the API as the
signed-in key and ``view.render`` fills a template. A POST is refused
(403) unless it carries the CSRF token of this browser's nonce and, when the browser
names an origin, comes from the console's own.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from federation.clock import Clock
from federation.console.api_client import ConsoleApi
from federation.console.sessions import (
    COOKIE_PATH,
    CSRF_COOKIE,
    SESSION_COOKIE,
    ConsoleSession,
    SessionCodec,
    SessionStore,
)
from federation.domain.secret_shapes import redact
from federation.errors import AuthenticationRequired, FederationError, NotAuthorized

NOTICES = {
    "signed-out": "You have signed out.",
    "expired": "Your session ended or its API key no longer works. Sign in again.",
    "signed-out-everywhere": "Every console session has ended, yours too. Sign in again.",
    "key-deleted": "The API key was deleted. Anything using it fails from now on.",
    "rotated": "New keys are published in the JWKS now; they sign after the lead time.",
    "already-next": "A next key was published already; no new key was made (one waits at "
    "most per algorithm).",
}


def _when(value: Any) -> str:
    """An API timestamp as ``2026-11-29 03:45:12 UTC``; ``—`` for none."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("federation.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    return environment


@dataclass(frozen=True)
class Console:
    """The console's collaborators, made once by :func:`federation.console.console_app`."""

    api_app: ASGIApp  # the whole application, which the console calls in process
    codec: SessionCodec
    sessions: SessionStore
    templates: jinja2.Environment
    secure_cookies: bool
    clock: Clock  # what the console reads the time with (when it fetched a log's head)


@dataclass
class View:
    """One request's page: the API as the signed-in key, and the page's template data."""

    request: Request
    console: Console
    api: ConsoleApi
    csrf_token: str
    whoami: dict[str, Any] = field(default_factory=dict)

    def render(self, template: str, status: int = 200, **data: Any) -> HTMLResponse:
        return render(
            self.request,
            self.console,
            template,
            status,
            csrf_token=self.csrf_token,
            whoami=self.whoami,
            **data,
        )

    async def form(self) -> FormData:
        return await self.request.form(max_files=0, max_fields=64)


Handler = Callable[[Request, View], Awaitable[Response]]


def render(
    request: Request,
    console: Console,
    template: str,
    status: int = 200,
    *,
    csrf_token: str = "",
    whoami: dict[str, Any] | None = None,
    reveal: str | None = None,
    **data: Any,
) -> HTMLResponse:
    """A template with what the base page needs: the CSRF token, the signed-in key (none
    before sign-in), the notice named in the query, the path for the navigation. Any
    secret on the page is redacted but ``reveal``, the one a page exists to show once:
    a page may repeat the path, a filter or a form the user filled in."""
    body = console.templates.get_template(template).render(
        csrf_token=csrf_token,
        whoami=whoami or {},
        notice=NOTICES.get(request.query_params.get("notice", "")),
        path=request.url.path,
        **data,
    )
    body = redact(body, keep=(reveal,) if reveal else ())
    return HTMLResponse(body, status_code=status)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def client_of(request: Request) -> tuple[str, int]:
    client = request.client
    return (client.host, client.port) if client else ("127.0.0.1", 0)


def redirect(path: str, **query: str) -> RedirectResponse:
    target = f"{COOKIE_PATH}{path}"
    if query:
        target = f"{target}?{urlencode(query)}"
    return RedirectResponse(target, status_code=303)


def set_cookie(response: Response, console: Console, name: str, value: str) -> None:
    # NOTE: no max_age or expires: a session cookie, gone with the browser session.
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=console.secure_cookies,
    )


def clear_cookie(response: Response, console: Console, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=console.secure_cookies
    )


def csrf_pair(request: Request, console: Console) -> tuple[str, str | None]:
    """The CSRF token for this browser, and a new nonce to set when it has none."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if nonce and 16 <= len(nonce) <= 128:
        return console.codec.csrf_token(nonce), None
    fresh = console.codec.new_csrf_nonce()
    return console.codec.csrf_token(fresh), fresh


async def check_post(request: Request, console: Console) -> None:
    """403 unless a POST carries this browser's CSRF token and comes from our origin."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        raise NotAuthorized("this form was sent from another site")
    form = await request.form(max_files=0, max_fields=64)
    token = form.get("csrf_token")
    if not console.codec.csrf_valid(
        request.cookies.get(CSRF_COOKIE), token if isinstance(token, str) else None
    ):
        raise NotAuthorized(
            "the form's security token is missing or stale: reload the page and try again"
        )


def cookie_session(request: Request, console: Console) -> ConsoleSession | None:
    """The session the cookie seals, live or not; None for none, a forged or an old one."""
    return console.codec.open(request.cookies.get(SESSION_COOKIE))


async def session_of(request: Request, console: Console) -> ConsoleSession | None:
    """The request's session if it is live: its cookie opens and the server still holds
    it (not signed out, not ended everywhere, its key still authenticating)."""
    session = cookie_session(request, console)
    if session is None:
        return None
    try:
        live = await console.sessions.is_live(session.session_id, session.api_key)
    except FederationError:
        # NOTE: a session the database cannot vouch for now is no session (fail closed);
        # the pages say why (see ``page``), the sign-in form just shows itself.
        return None
    return session if live else None


def signed_out(console: Console, **query: str) -> RedirectResponse:
    """To the sign-in page, the session cookie gone."""
    response = redirect("/sign-in", **query)
    clear_cookie(response, console, SESSION_COOKIE)
    return response


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A signed-in page: session, CSRF on POST, the API client, errors as pages."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        console = console_of(request)
        session = cookie_session(request, console)
        if session is None:
            return redirect("/sign-in")
        try:
            live = await console.sessions.is_live(session.session_id, session.api_key)
        except FederationError as error:
            return render(request, console, "error.html", error.status, error=error)
        if not live:
            # NOTE: checked on every request, not only at sign-in: a copy of the cookie
            # is worthless once the session has ended, here and on every replica.
            return signed_out(console, notice="expired")
        csrf_token, new_nonce = csrf_pair(request, console)
        async with ConsoleApi(console.api_app, session.api_key, client_of(request)) as api:
            view = View(request=request, console=console, api=api, csrf_token=csrf_token)
            try:
                if request.method == "POST":
                    await check_post(request, console)
                view.whoami = await api.whoami()
                response = await handler(request, view)
            except AuthenticationRequired:
                return signed_out(console, notice="expired")
            except FederationError as error:
                response = error_page(view, error)
        if new_nonce is not None:
            set_cookie(response, console, CSRF_COOKIE, new_nonce)
        return response

    return endpoint


async def filtered_list(
    view: View, path: str, names: tuple[str, ...], limit: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """One page of an API list, filtered by the query's ``names``; and the filters."""
    query = view.request.query_params
    filters = {name: query.get(name, "").strip() for name in names}
    listed = await view.api.get(path, {**filters, "limit": limit, "cursor": query.get("cursor")})
    return listed, filters


async def section(call: Awaitable[Any]) -> tuple[Any, str | None]:
    """A part of a page the key may not be allowed to see: its data, or why not."""
    try:
        return await call, None
    except AuthenticationRequired:
        raise
    except FederationError as error:
        return None, error.message


def error_page(view: View, error: FederationError) -> HTMLResponse:
    return view.render("error.html", status=error.status, error=error)
