"""OIDC discovery and JWKS: public, cacheable, and fast (AWS gives up after 5 s)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from federation.api.deps import AppContext, Context
from federation.api.openapi import problems
from federation.domain.tokens import CLAIMS_SUPPORTED
from federation.keys import ALGORITHMS
from federation.settings import Settings

router = APIRouter(tags=["discovery"])


def discovery_document(settings: Settings, log_key: str | None = None) -> dict[str, object]:
    """The discovery document; with ``log_key`` (the transparency log's note verifier
    key), where the log is and how its checkpoints are checked."""
    document: dict[str, object] = {
        "issuer": settings.issuer,
        "jwks_uri": settings.jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "scopes_supported": ["openid"],
    }
    if log_key is not None:
        document["transparency_log"] = {
            "url": settings.log_url,
            "origin": settings.checkpoint_origin,
            "verifier_key": log_key,
        }
    return document


DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"


@router.get(
    DISCOVERY_PATH,
    summary="OpenID Connect discovery document",
    response_model=None,
)
@router.head(DISCOVERY_PATH, include_in_schema=False, response_model=None)
async def openid_configuration(context: Context) -> Response:
    return discovery_response(context)


@router.get(
    JWKS_PATH,
    summary="Public signing keys (JWKS)",
    response_model=None,
    # NOTE: 503: a key store in the database may be down
    responses={
        304: {"description": "Not modified: `If-None-Match` names the ETag."},
        **problems(503),
    },
)
@router.head(JWKS_PATH, include_in_schema=False, response_model=None)
async def jwks(request: Request, context: Context) -> Response:
    return await jwks_response(context, request.headers.get("if-none-match", ""))


def discovery_response(context: AppContext) -> Response:
    return Response(
        content=context.discovery,
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={context.settings.jwks_max_age}"},
    )


async def jwks_response(context: AppContext, if_none_match: str) -> Response:
    # NOTE: served on the event loop, but for the keyring's look at its store (about
    # once a second), which runs in a thread: a slow store never blocks the loop.
    if context.keyring.refresh_due:
        document = await run_in_threadpool(context.keyring.jwks)
    else:
        document = context.keyring.jwks()
    headers = {
        "Cache-Control": f"public, max-age={context.settings.jwks_max_age}",
        "ETag": document.etag,
    }
    wanted = _etags(if_none_match)
    if document.etag in wanted or "*" in wanted:
        return Response(status_code=304, headers=headers)
    return Response(content=document.body, media_type="application/json", headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
