"""The signing keys page: states and times, the live JWKS and discovery, rotation."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from federation.console.web import View, page, redirect, section

ALGORITHMS = ("ES256", "RS256")


@page
async def list_signing_keys(request: Request, view: View) -> Response:
    keys, keys_error = await section(view.api.get("/api/v1/keys", {"limit": 100}))
    jwks = await view.api.get("/.well-known/jwks.json")
    discovery = await view.api.get("/.well-known/openid-configuration")
    return view.render(
        "signing_keys.html",
        keys=keys["items"] if keys else [],
        keys_error=keys_error,
        jwks=json.dumps(jwks, indent=2),
        discovery=json.dumps(discovery, indent=2),
        algorithms=ALGORITHMS,
    )


@page
async def rotate(request: Request, view: View) -> Response:
    form = await view.form()
    alg = str(form.get("alg") or "")
    rotated = await view.api.post("/api/v1/keys/rotate", {"alg": alg} if alg else {})
    made = any(item["created"] for item in rotated["items"])
    return redirect("/signing-keys", notice="rotated" if made else "already-next")
