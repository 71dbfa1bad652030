"""OIDC discovery and JWKS: public, cacheable, and fast (AWS gives up after 5 s)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from federation.api.deps import Context
from federation.keys import ALGORITHMS
from federation.settings import Settings
from federation.tokens import CLAIMS_SUPPORTED

router = APIRouter(tags=["discovery"])


def discovery_document(settings: Settings) -> dict[str, object]:
    return {
        "issuer": settings.issuer,
        "jwks_uri": settings.jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "scopes_supported": ["openid"],
    }


@router.get(
    "/.well-known/openid-configuration",
    summary="OpenID Connect discovery document",
    response_model=None,
)
@router.head("/.well-known/openid-configuration", include_in_schema=False, response_model=None)
def openid_configuration(context: Context) -> Response:
    return Response(
        content=context.discovery,
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={context.settings.jwks_max_age}"},
    )


@router.get("/.well-known/jwks.json", summary="Public signing keys (JWKS)", response_model=None)
@router.head("/.well-known/jwks.json", include_in_schema=False, response_model=None)
def jwks(request: Request, context: Context) -> Response:
    document = context.keyring.jwks()
    headers = {
        "Cache-Control": f"public, max-age={context.settings.jwks_max_age}",
        "ETag": document.etag,
    }
    wanted = _etags(request.headers.get("if-none-match", ""))
    if document.etag in wanted or "*" in wanted:
        return Response(status_code=304, headers=headers)
    return Response(content=document.body, media_type="application/json", headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
