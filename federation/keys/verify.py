"""Decoding and verifying tokens the way a relying party does, for `decode`/`verify`.

Verification fetches the issuer's discovery document and JWKS over HTTP and checks the
signature with joserfc, a JOSE implementation independent of our signing code.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import InvalidClaimError, JoseError
from joserfc.jwk import KeySet

from federation._internal.encoding import b64url_decode
from federation.errors import InvalidRequest, ResourceUnavailable, VerificationFailed
from federation.keys import ALGORITHMS


@dataclass(frozen=True)
class Decoded:
    header: dict[str, Any]
    claims: dict[str, Any]


def decode(token: str) -> Decoded:
    """Header and claims of a compact JWS, without checking anything."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise InvalidRequest("not a JWT: expected three dot-separated parts")
    try:
        header, claims = (json.loads(b64url_decode(part)) for part in parts[:2])
    except (ValueError, binascii.Error) as exc:
        raise InvalidRequest("not a JWT: the header or claims are not base64url JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidRequest("not a JWT: the header and claims must be JSON objects")
    return Decoded(header=header, claims=claims)


@dataclass(frozen=True)
class IssuerKeys:
    issuer: str
    jwks: dict[str, Any]


def fetch_issuer_keys(base_url: str, client: httpx.Client) -> IssuerKeys:
    """Discovery, then the JWKS it points to."""
    discovery = _get_json(client, f"{base_url.rstrip('/')}/.well-known/openid-configuration")
    issuer, jwks_uri = discovery.get("issuer"), discovery.get("jwks_uri")
    if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
        raise InvalidRequest(
            f"{base_url} serves no OIDC discovery document with issuer and jwks_uri"
        )
    return IssuerKeys(issuer=issuer, jwks=_get_json(client, jwks_uri))


def _get_json(client: httpx.Client, url: str) -> dict[str, Any]:
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise ResourceUnavailable(f"cannot fetch {url}: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise ResourceUnavailable(f"{url} answered HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError as exc:
        raise InvalidRequest(f"{url} did not answer JSON") from exc
    if not isinstance(document, dict):
        raise InvalidRequest(f"{url} did not answer a JSON object")
    return document


def verify(
    token: str,
    keys: IssuerKeys,
    *,
    audience: str,
    now: Callable[[], int] | None = None,
    leeway: int = 0,
) -> Decoded:
    """Signature (by ``kid``, ES256/RS256 only), issuer, audience and times."""
    decoded = decode(token)
    try:
        key_set = KeySet.import_key_set(keys.jwks)  # type: ignore[arg-type]
        verified = jwt.decode(token.strip(), key_set, algorithms=list(ALGORITHMS))
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=leeway,
            iss={"essential": True, "value": keys.issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            iat={"essential": True},
        )
        registry.validate(verified.claims)
    except JoseError as exc:
        raise VerificationFailed(_mismatch(exc, decoded.claims, audience) or _explain(exc)) from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise VerificationFailed(
            f"the issuer's JWKS or the token is malformed ({type(exc).__name__})"
        ) from exc
    return decoded


def _mismatch(exc: JoseError, claims: dict[str, Any], audience: str) -> str | None:
    """For a wrong audience, both values: an audience is no secret, and the two side
    by side say at once which one is off."""
    if not isinstance(exc, InvalidClaimError) or exc.claim != "aud":
        return None
    carried = claims.get("aud")
    listed = carried if isinstance(carried, list) else [carried]
    shown = ", ".join(repr(item) for item in listed)
    return f"the token's audience is {shown}, not {audience!r} as expected"


def _explain(exc: JoseError) -> str:
    text = exc.description or exc.error or type(exc).__name__
    return text if isinstance(text, str) else str(text)
