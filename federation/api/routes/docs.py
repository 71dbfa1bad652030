"""``GET /docs``: the API reference (Swagger UI), with nothing from another origin.

Swagger UI's files come from the pinned ``swagger-ui-bundle-v2`` distribution (Swagger
UI under the Apache License 2.0, which ships with it) and are served from
``/docs/assets/``, beside the page's own starter script: the page works offline, and
what it runs is what was installed, not what a CDN serves today. Admins paste API keys
into this page ("Authorize"), so it answers with a strict Content-Security-Policy:
scripts, styles, images and requests from this origin only, no inline script, no
frames. ``FEDERATION_API_DOCS=off`` serves neither the page nor its assets (the
document at ``/openapi.json`` stays). ReDoc is not served.
"""

from __future__ import annotations

import html
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from federation.errors import ResourceNotFound

PATH = "/docs"
ASSETS = f"{PATH}/assets"

# Nothing from another origin, nothing inline; `data:` images are Swagger UI's icons.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_JS = "text/javascript; charset=utf-8"
_SWAGGER_UI: Traversable = swagger_ui_path
# Every file the page loads, by the name it is served under: nothing else is.
_FILES: dict[str, tuple[Traversable, str]] = {
    "swagger-ui-bundle.js": (_SWAGGER_UI / "swagger-ui-bundle.js", _JS),
    "swagger-ui.css": (_SWAGGER_UI / "swagger-ui.css", "text/css; charset=utf-8"),
    "favicon-32x32.png": (_SWAGGER_UI / "favicon-32x32.png", "image/png"),
    "docs.js": (files("federation.api") / "static" / "docs.js", _JS),
}
_read: dict[str, bytes] = {}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API reference</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/docs.js"></script>
</body>
</html>
"""


def page(title: str, root_path: str, openapi_url: str) -> str:
    """The page, its URLs under ``root_path`` (the path a proxy serves the API under)."""
    return _PAGE.format(
        title=html.escape(title),
        assets=html.escape(f"{root_path}{ASSETS}"),
        openapi=html.escape(f"{root_path}{openapi_url}"),
    )


def asset(name: str) -> tuple[bytes, str]:
    """The content and media type of a file the page loads; read once, on first use."""
    found = _FILES.get(name)
    if found is None:
        raise ResourceNotFound(f"no such file under {ASSETS}")
    source, media_type = found
    if name not in _read:
        _read[name] = source.read_bytes()
    return _read[name], media_type


def router(title: str, openapi_url: str) -> APIRouter:
    """``/docs`` and its assets, for the document at ``openapi_url``."""
    found = APIRouter(include_in_schema=False)

    @found.get(PATH)
    async def docs(request: Request) -> Response:
        root_path = str(request.scope.get("root_path", "")).rstrip("/")
        headers = {**HEADERS, "Cache-Control": "no-cache"}
        return HTMLResponse(page(title, root_path, openapi_url), headers=headers)

    # NOTE: a plain function: a first read of a file runs in a thread, not on the loop
    @found.get(f"{ASSETS}/{{name}}")
    def docs_asset(name: str) -> Response:
        content, media_type = asset(name)
        headers = {**HEADERS, "Cache-Control": "public, max-age=3600"}
        return Response(content, media_type=media_type, headers=headers)

    return found
