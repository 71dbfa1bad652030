"""Checking a JWT as a relying party does: discovery → JWKS → signature → claims.

Independent of the code that signs our tokens: signatures are checked with joserfc.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from federation.keys.verify import decode

AWS_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})


class TokenRejected(Exception):
    """Why a cloud would refuse the token; ``reason`` is one of the class constants."""

    MALFORMED = "malformed"
    ISSUER = "issuer"
    UNREACHABLE = "unreachable"
    ALGORITHM = "algorithm"
    SIGNATURE = "signature"
    AUDIENCE = "audience"
    EXPIRED = "expired"
    TOO_EARLY = "too_early"
    LIFETIME = "lifetime"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Verified:
    header: dict[str, Any]
    claims: dict[str, Any]


class IssuerKeys:
    """Fetches and caches each issuer's JWKS through its discovery document."""

    def __init__(self, http: httpx.Client | None = None, cache_seconds: float = 300) -> None:
        self.http = http or httpx.Client(timeout=5.0)
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def key_set(self, issuer: str, *, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._cache.get(issuer)
            if cached is not None and not refresh and time.monotonic() < cached[0]:
                return cached[1]
        discovery = self._get(f"{issuer}/.well-known/openid-configuration")
        if discovery.get("issuer") != issuer:
            raise TokenRejected(
                TokenRejected.ISSUER, f"the discovery document of {issuer} names another issuer"
            )
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise TokenRejected(TokenRejected.ISSUER, f"{issuer} publishes no jwks_uri")
        try:
            keys = KeySet.import_key_set(self._get(jwks_uri))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise TokenRejected(TokenRejected.ISSUER, f"the JWKS of {issuer} is not valid") from exc
        with self._lock:
            self._cache[issuer] = (time.monotonic() + self.cache_seconds, keys)
        return keys

    def _get(self, url: str) -> dict[str, Any]:
        try:
            response = self.http.get(url)
        except httpx.HTTPError as exc:
            raise TokenRejected(TokenRejected.UNREACHABLE, f"cannot fetch {url}") from exc
        if response.status_code != 200:
            raise TokenRejected(
                TokenRejected.UNREACHABLE, f"{url} answered HTTP {response.status_code}"
            )
        try:
            document = response.json()
        except ValueError as exc:
            raise TokenRejected(TokenRejected.UNREACHABLE, f"{url} is not JSON") from exc
        if not isinstance(document, dict):
            raise TokenRejected(TokenRejected.UNREACHABLE, f"{url} is not a JSON object")
        return document


class StaticKeys(IssuerKeys):
    """A JWKS given whole, in place of discovery: an uploaded ``jwksJson`` (a private
    issuer), or keys a test signs with."""

    def __init__(self, jwks: str | dict[str, Any]) -> None:
        # NOTE: no super().__init__(): nothing is fetched, so no HTTP client is made.
        document = json.loads(jwks) if isinstance(jwks, str) else jwks
        if not isinstance(document, dict):
            raise ValueError("a JWKS is a JSON object with keys")
        self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]

    def close(self) -> None:
        return None

    def key_set(self, issuer: str, *, refresh: bool = False) -> KeySet:
        return self._keys


def verify_jwt(
    token: str,
    keys: IssuerKeys,
    *,
    algorithms: Collection[str],
    issuers: Callable[[str], bool],
    now: float | None = None,
    require_kid: bool = False,
    leeway: int = 0,
) -> Verified:
    """The token's header and claims, once its signature is good and its times hold;
    ``issuers(iss)`` says whether the cloud trusts the issuer at all. Audiences are the
    caller's to check: each cloud has its own rule."""
    try:
        decoded = decode(token)
    except Exception as exc:
        raise TokenRejected(TokenRejected.MALFORMED, "the token is not a JWT") from exc
    header, claims = decoded.header, decoded.claims
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise TokenRejected(TokenRejected.ALGORITHM, f"tokens signed with {alg} are not accepted")
    if require_kid and not header.get("kid"):
        raise TokenRejected(TokenRejected.MALFORMED, "the token header has no kid")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuers(issuer):
        raise TokenRejected(
            TokenRejected.ISSUER, f"no identity provider is registered for {issuer}"
        )
    key_set = keys.key_set(issuer)
    kid = header.get("kid")
    if kid and not any(key.kid == kid for key in key_set.keys):
        key_set = keys.key_set(issuer, refresh=True)  # a new key: fetch once more
    try:
        jws.deserialize_compact(token.strip(), key_set, algorithms=[alg])
    except (JoseError, ValueError) as exc:
        raise TokenRejected(
            TokenRejected.SIGNATURE, "the token's signature does not verify"
        ) from exc
    moment = time.time() if now is None else now
    for name in ("exp", "iat"):
        if not isinstance(claims.get(name), int):
            raise TokenRejected(TokenRejected.MALFORMED, f"the token has no integer {name}")
    if claims["exp"] <= moment - leeway:
        raise TokenRejected(TokenRejected.EXPIRED, "the token has expired")
    if claims["iat"] > moment + leeway or claims.get("nbf", 0) > moment + leeway:
        raise TokenRejected(TokenRejected.TOO_EARLY, "the token is not valid yet")
    return Verified(header=header, claims=claims)
