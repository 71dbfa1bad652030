"""Signing in with an API key, and out: of this session, or (admins) of every session.

Signing out ends the session on the server, not only in this browser: a copy of the
cookie taken before is refused afterwards. "Sign out everywhere" ends every console
session of every user through ``POST /api/v1/console-sessions/revoke`` as the signed-in
key, so only an ``admin`` key may.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from federation.console.api_client import ConsoleApi
from federation.console.sessions import CSRF_COOKIE, SESSION_COOKIE
from federation.console.web import (
    Console,
    View,
    check_post,
    clear_cookie,
    client_of,
    console_of,
    cookie_session,
    csrf_pair,
    page,
    redirect,
    render,
    session_of,
    set_cookie,
)
from federation.errors import FederationError

API_KEY_FIELD = "api_key"


async def sign_in_form(request: Request) -> Response:
    console = console_of(request)
    if await session_of(request, console) is not None:
        return redirect("/api-keys")
    return _form_page(request, console)


async def sign_in(request: Request) -> Response:
    console = console_of(request)
    try:
        await check_post(request, console)
        form = await request.form(max_files=0, max_fields=8)
        raw = form.get(API_KEY_FIELD)
        key = raw.strip() if isinstance(raw, str) else ""
        if not key:
            return _form_page(request, console, error="Enter an API key.", status=400)
        async with ConsoleApi(console.api_app, key, client_of(request)) as api:
            await api.whoami()
        session_id = console.codec.new_session_id()
        await console.sessions.begin(session_id, key)
    except FederationError as error:
        # NOTE: never the key itself; a wrong key reads as the API's 401 title.
        return _form_page(request, console, error=error.message, status=error.status)
    response = redirect("/api-keys")
    set_cookie(response, console, SESSION_COOKIE, console.codec.seal(key, session_id=session_id))
    # A new CSRF nonce with the new session: a token seen before sign-in is worthless.
    set_cookie(response, console, CSRF_COOKIE, console.codec.new_csrf_nonce())
    return response


async def sign_out(request: Request) -> Response:
    console = console_of(request)
    try:
        await check_post(request, console)
        session = cookie_session(request, console)
        if session is not None:
            await console.sessions.end(session.session_id)
    except FederationError as error:
        return _form_page(request, console, error=error.message, status=error.status)
    return _signed_out(console, notice="signed-out")


@page
async def confirm_sign_out_everywhere(request: Request, view: View) -> Response:
    return view.render("sign_out_everywhere.html")


@page
async def sign_out_everywhere(request: Request, view: View) -> Response:
    await view.api.post("/api/v1/console-sessions/revoke", {})
    return _signed_out(view.console, notice="signed-out-everywhere")


def _signed_out(console: Console, **query: str) -> Response:
    response = redirect("/sign-in", **query)
    clear_cookie(response, console, SESSION_COOKIE)
    clear_cookie(response, console, CSRF_COOKIE)
    return response


def _form_page(
    request: Request, console: Console, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    csrf_token, new_nonce = csrf_pair(request, console)
    response = render(
        request,
        console,
        "sign_in.html",
        status,
        csrf_token=csrf_token,
        error=error,
        field=API_KEY_FIELD,
    )
    if new_nonce is not None:
        set_cookie(response, console, CSRF_COOKIE, new_nonce)
    return response
