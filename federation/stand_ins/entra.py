"""A local stand-in for Microsoft Entra's token endpoint, for tests and users' CI.

It trades a federated client assertion for an (opaque) access token after checking it
the way Entra does:

1. a federated identity credential of the app (``client_id``) whose ``issuer`` equals
   the token's ``iss`` exactly (AADSTS700211 otherwise), whose ``subject`` equals
   ``sub`` exactly, case-sensitive (AADSTS700213), and whose audience is in ``aud``
   (AADSTS700212), each matched by the policy tester's rules
   (:mod:`federation.policy.azure`); an app without credentials answers AADSTS70021;
2. RS256 only, the signature through the issuer's discovery document and JWKS
   (:func:`~federation.stand_ins.issuers.verify_jwt`, joserfc), AADSTS700027 when it does
   not verify and AADSTS50166 when the issuer cannot be fetched;
3. the assertion within its time range at the stand-in's clock (AADSTS700024).

Answers are Entra's: ``{"token_type": "Bearer", "expires_in", "access_token"}``, or
``{"error", "error_description": "AADSTS<code>: ...", "error_codes": [<code>], ...}``.
The tenant's OpenID discovery document (which MSAL reads) and the instance discovery
endpoint are served too. Error codes are those Entra is seen to use; where Entra's
exact code is not known (a non-RS256 assertion) the stand-in picks a plausible one.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from federation.clock import Clock, SystemClock
from federation.domain.tokens import ENTRA_AUDIENCE
from federation.keys.verify import decode
from federation.policy import azure
from federation.stand_ins.issuers import IssuerKeys, TokenRejected, Verified, verify_jwt

__all__ = ["EntraStandIn", "FederatedCredential", "Grant", "Refused", "entra_app"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential of an app registration or managed identity."""

    client_id: str
    issuer: str
    subject: str
    audience: str = ENTRA_AUDIENCE
    name: str = "federation"


@dataclass(frozen=True)
class Grant:
    """An access token the stand-in issued, and the assertion it took for it (kept whole
    so that tests can check it again with a verifier of their own)."""

    client_id: str
    scope: str
    access_token: str
    expires_in: int
    credential: FederatedCredential
    assertion: Verified
    assertion_jwt: str


class Refused(Exception):
    """Entra's answer to a request it refuses: OAuth ``error``, AADSTS ``code``, the
    message after ``AADSTS<code>: ``, and the HTTP status."""

    def __init__(self, error: str, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error, self.code, self.message, self.status = error, code, message, status


class EntraStandIn:
    """One tenant's token service. Construction does no I/O; :meth:`app` serves it."""

    def __init__(
        self,
        tenant_id: str,
        credentials: Iterable[FederatedCredential],
        *,
        keys: IssuerKeys | None = None,
        clock: Clock | None = None,
        leeway: int = 0,
        token_lifetime: int = 3599,
    ) -> None:
        self.tenant_id = tenant_id
        self.credentials = tuple(credentials)
        self.keys = keys or IssuerKeys()
        self.clock = clock or SystemClock()
        self.leeway = leeway
        self.token_lifetime = token_lifetime
        self._grants: list[Grant] = []
        self._lock = threading.Lock()

    @property
    def grants(self) -> list[Grant]:
        """Every grant so far, oldest first."""
        with self._lock:
            return list(self._grants)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery),
                Route("/{tenant}/discovery/v2.0/keys", self._keys),
                Route("/common/discovery/instance", self._instance_discovery),
                Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
            ]
        )

    # ---- the token endpoint -----------------------------------------------------------

    def token(self, tenant: str, form: Mapping[str, str]) -> Grant:
        """Check one client-credentials request; raises :class:`Refused` as Entra would."""
        if not self._is_tenant(tenant):
            raise Refused("invalid_request", 90002, f"Tenant '{tenant}' not found.")
        for name in ("grant_type", "client_id", "scope"):
            if not form.get(name):
                raise Refused(
                    "invalid_request",
                    900144,
                    f"The request body must contain the following parameter: '{name}'.",
                )
        if form["grant_type"] != "client_credentials":
            raise Refused(
                "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        scope = form["scope"]
        if not all(part.endswith("/.default") for part in scope.split()):
            raise Refused(
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        assertion = form.get("client_assertion")
        if not assertion or form.get("client_assertion_type") != ASSERTION_TYPE:
            raise Refused(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
                status=401,
            )
        client_id = form["client_id"]
        credential, verified = self._check(client_id, assertion)
        grant = Grant(
            client_id=client_id,
            scope=scope,
            access_token=secrets.token_urlsafe(32),
            expires_in=self.token_lifetime,
            credential=credential,
            assertion=verified,
            assertion_jwt=assertion,
        )
        with self._lock:
            self._grants.append(grant)
        return grant

    def _check(self, client_id: str, assertion: str) -> tuple[FederatedCredential, Verified]:
        try:
            claims = decode(assertion).claims
        except Exception:
            raise Refused("invalid_request", 50027, "JWT token is invalid or malformed.") from None
        iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        mine = [c for c in self.credentials if c.client_id == client_id]
        if not mine:
            raise Refused(
                "invalid_client",
                70021,
                "No matching federated identity record found for presented assertion. "
                f"Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. "
                f"Assertion Audience: '{','.join(map(str, audiences))}'.",
                status=401,
            )
        # NOTE: the policy tester's matching rules (byte for byte, case-sensitive).
        by_issuer = [c for c in mine if azure.issuer_matches(c.issuer, iss)]
        if not by_issuer:
            raise _mismatch(700211, "issuer", iss)
        by_subject = [c for c in by_issuer if azure.subject_matches(c.subject, sub)]
        if not by_subject:
            raise _mismatch(700213, "subject", sub)
        matched = [c for c in by_subject if azure.audience_matches(c.audience, aud)]
        if not matched:
            raise _mismatch(700212, "audience", ",".join(map(str, audiences)))
        credential = matched[0]
        try:
            verified = verify_jwt(
                assertion,
                self.keys,
                algorithms={"RS256"},
                issuers=lambda issuer: issuer == credential.issuer,
                now=self.clock.now().timestamp(),
                leeway=self.leeway,
            )
        except TokenRejected as exc:
            raise self._rejected(exc, claims) from None
        return credential, verified

    def _rejected(self, exc: TokenRejected, claims: Mapping[str, Any]) -> Refused:
        if exc.reason == TokenRejected.ALGORITHM:
            return Refused(
                "invalid_request",
                5002738,
                f"Invalid JWT token. {exc.message}; supported signing algorithms are: 'RS256'.",
            )
        if exc.reason in (TokenRejected.ISSUER, TokenRejected.UNREACHABLE):
            return Refused("invalid_request", 50166, "Request to External OIDC endpoint failed.")
        if exc.reason == TokenRejected.SIGNATURE:
            return Refused(
                "invalid_client",
                700027,
                "Client assertion failed signature validation.",
                status=401,
            )
        if exc.reason in (TokenRejected.EXPIRED, TokenRejected.TOO_EARLY):
            return Refused(
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range. Current time: "
                f"{_iso(self.clock.now().timestamp())}, assertion valid from "
                f"{_iso(claims.get('nbf', claims.get('iat')))}, expiry time of assertion "
                f"{_iso(claims.get('exp'))}.",
                status=401,
            )
        return Refused("invalid_request", 50027, "JWT token is invalid or malformed.")

    def _is_tenant(self, tenant: str) -> bool:
        return tenant.casefold() == self.tenant_id.casefold()

    # ---- HTTP -------------------------------------------------------------------------

    async def _token(self, request: Request) -> JSONResponse:
        tenant = request.path_params["tenant"]
        body = await request.body()
        try:
            if len(body) > MAX_BODY:
                raise Refused("invalid_request", 90015, "The request is too large.")
            try:
                pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
            except ValueError:
                raise Refused(
                    "invalid_request", 900144, "The request body must be a form."
                ) from None
            # NOTE: blocking work (fetching the issuer's JWKS) off the event loop.
            grant = await run_in_threadpool(self.token, tenant, dict(pairs))
        except Refused as refused:
            return _error(refused, self.clock.now())
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": grant.expires_in,
                "ext_expires_in": grant.expires_in,
                "access_token": grant.access_token,
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    async def _discovery(self, request: Request) -> JSONResponse:
        tenant = request.path_params["tenant"]
        if not self._is_tenant(tenant):
            refused = Refused("invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
            return _error(refused, self.clock.now())
        base = str(request.base_url).rstrip("/")
        root = f"{base}/{self.tenant_id}"
        return JSONResponse(
            {
                "issuer": f"{root}/v2.0",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
            }
        )

    async def _keys(self, _: Request) -> JSONResponse:
        # The stand-in's access tokens are opaque: there is nothing to verify them with.
        return JSONResponse({"keys": []})

    async def _instance_discovery(self, request: Request) -> JSONResponse:
        host = request.url.netloc
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "tenant_discovery_endpoint": (
                    f"{base}/{self.tenant_id}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            }
        )


def entra_app(
    tenant_id: str,
    credentials: Iterable[FederatedCredential],
    *,
    keys: IssuerKeys | None = None,
    clock: Clock | None = None,
) -> Starlette:
    """The stand-in's ASGI app; ``app.state.stand_in`` is the :class:`EntraStandIn`."""
    stand_in = EntraStandIn(tenant_id, credentials, keys=keys, clock=clock)
    app = stand_in.app()
    app.state.stand_in = stand_in
    return app


def _mismatch(code: int, what: str, value: object) -> Refused:
    return Refused(
        "invalid_client",
        code,
        f"No matching federated identity record found for presented assertion {what} "
        f"'{value}'. Please note that the matching is done using a case-sensitive "
        "comparison. Please check your federated identity credential Subject, Audience "
        "and Issuer against the presented assertion.",
        status=401,
    )


def _iso(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "unknown"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _error(refused: Refused, now: datetime) -> JSONResponse:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return JSONResponse(
        {
            "error": refused.error,
            "error_description": (
                f"AADSTS{refused.code}: {refused.message} Trace ID: {trace} "
                f"Correlation ID: {correlation} Timestamp: {stamp}"
            ),
            "error_codes": [refused.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={refused.code}",
        },
        status_code=refused.status,
    )
