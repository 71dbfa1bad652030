"""The API keys page: Oz's settings page for keys, over ``/api/v1/api-keys``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from federation.console.web import View, page, redirect
from federation.errors import FederationError, ResourceNotFound

EXPIRIES = (("1d", "1 day"), ("30d", "30 days"), ("90d", "90 days"), ("never", "Never"))
SCOPES = ("federate", "runs:write", "audit", "admin")
LIST_LIMIT = 100
DEFAULT_FORM = {
    "name": "",
    "principal_uid": "",
    "expires_in": "30d",
    "scopes": ["federate"],
}
MAX_PAGES = 50  # looking a key up by id walks at most this many pages of the list


def _key_types(whoami: dict[str, Any]) -> tuple[str, ...]:
    """The key types the signed-in principal can create, its default first: a user its
    own personal keys; with ``admin``, agent keys of a service account too. A service
    account (the admin's own principal is one) holds no personal key."""
    types = ["personal"] if whoami.get("type") == "user" else []
    if "admin" in whoami.get("scopes", ()):
        types.append("agent")
    return tuple(types)


def _default_type(whoami: dict[str, Any]) -> str:
    return next(iter(_key_types(whoami)), "personal")


@page
async def list_keys(request: Request, view: View) -> Response:
    return await _keys_page(view)


@page
async def create_key(request: Request, view: View) -> Response:
    form = await view.form()
    key_type = str(form.get("type") or _default_type(view.whoami))
    body: dict[str, Any] = {
        "name": str(form.get("name") or "").strip(),
        "type": key_type,
        "expires_in": str(form.get("expires_in") or "30d"),
        "scopes": [str(scope) for scope in form.getlist("scopes")] or ["federate"],
    }
    account = str(form.get("principal_uid") or "").strip()
    if account and key_type == "agent":
        body["principal_uid"] = account
    try:
        created = await view.api.post("/api/v1/api-keys", body)
    except FederationError as error:
        return await _keys_page(view, error=error.message, status=error.status, asked=body)
    # NOTE: the raw key is in this answer only (no-store); the list never holds it.
    return await _keys_page(view, created=created, status=201)


@page
async def confirm_delete(request: Request, view: View) -> Response:
    key = await _find_key(view, request.path_params["key_id"])
    return view.render("api_key_delete.html", key=key)


@page
async def delete_key(request: Request, view: View) -> Response:
    key_id = request.path_params["key_id"]
    await view.api.delete(f"/api/v1/api-keys/{quote(key_id, safe='')}")
    return redirect("/api-keys", notice="key-deleted")


async def _keys_page(
    view: View,
    *,
    created: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
    asked: dict[str, Any] | None = None,
) -> Response:
    cursor = view.request.query_params.get("cursor")
    listed = await view.api.get("/api/v1/api-keys", {"limit": LIST_LIMIT, "cursor": cursor})
    return view.render(
        "api_keys.html",
        status=status,
        keys=listed["items"],
        page_info=listed["page_info"],
        created=created,
        reveal=created["key"] if created else None,  # NOTE: shown once, on this page only
        error=error,
        asked=asked or {**DEFAULT_FORM, "type": _default_type(view.whoami)},
        key_types=_key_types(view.whoami),
        expiries=EXPIRIES,
        scopes=SCOPES,
    )


async def _find_key(view: View, key_id: str) -> dict[str, Any]:
    cursor = None
    for _ in range(MAX_PAGES):
        listed = await view.api.get("/api/v1/api-keys", {"limit": 500, "cursor": cursor})
        for key in listed["items"]:
            if key["id"] == key_id:
                found: dict[str, Any] = key
                return found
        cursor = listed["page_info"]["next_cursor"]
        if cursor is None:
            break
    raise ResourceNotFound(f"API key {key_id} not found")
