"""A local stand-in for GCP STS and IAM Credentials (no emulator of either exists).

``POST /v1/token`` takes the RFC 8693 exchange as google-auth's ``google.oauth2.sts``
sends it (form, or JSON as in the REST reference) and checks the token as a workload
identity pool's OIDC provider does before answering: the provider's issuer URI equals
``iss``; RS256 or ES256 with a ``kid`` (the header rule of
:mod:`federation.policy.gcp_token`, which the tester applies too); the signature
against the issuer's JWKS (found through discovery, or the provider's uploaded
``jwksJson``); ``iat`` in the past and ``exp`` less than 48 hours after it; the
audience rule; ``google.subject = assertion.sub`` at most 127 bytes; an optional
attribute condition. Provider names follow GCP's ID rules
(:mod:`federation.policy.gcp_names`). Refusals are GCP's OAuth error JSON with GCP's
messages.

``POST /v1/projects/-/serviceAccounts/{sa}:generateAccessToken`` (Bearer: a federated
token issued here) allows only the principals configured for that service account.

The attribute mapping is fixed to the one the examples use: ``google.subject =
assertion.sub``, ``google.groups = assertion.teams``, ``attribute.environment =
assertion.environment``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from federation.clock import Clock, SystemClock
from federation.policy import gcp_token
from federation.policy.gcp_names import ProviderName, is_project_number
from federation.stand_ins.issuers import IssuerKeys, TokenRejected, Verified, verify_jwt

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
SUBJECT_TOKEN_TYPES = frozenset(
    {"urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token"}
)
SUBJECT_LIMIT = 127  # bytes of google.subject
MAX_TOKEN_LIFETIME = 48 * 3600  # exp - iat must be less
FEDERATED_LIFETIME = 3600
_PROVIDER_PREFIX = "//iam.googleapis.com/"

# GCP's words, where they are known (observed answers, quoted in its troubleshooting).
BAD_AUDIENCE_PARAMETER = (
    'Invalid value for "audience". This value should be the full resource name of the '
    "Identity Provider. See https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/"
    "token for the list of possible formats."
)
AUDIENCE_MISMATCH = "The audience in JWT does not match the expected values."
CONDITION_REFUSED = "The given credential is rejected by the attribute condition."
SUBJECT_TOO_LONG = (
    "The size of mapped attribute google.subject exceeds the 127 bytes limit. Either modify "
    "your attribute mapping or the incoming assertion to produce a mapped attribute that is "
    "less than 127 bytes."
)
ISSUER_UNREACHABLE = "Error connecting to the given credential's issuer."
_REJECTIONS = {
    TokenRejected.MALFORMED: "Unable to parse the ID Token (it must be a signed JWT with a kid).",
    TokenRejected.ISSUER: "The issuer in ID Token does not match the expected ones.",
    TokenRejected.UNREACHABLE: ISSUER_UNREACHABLE,
    TokenRejected.ALGORITHM: "The ID Token must be signed with RS256 or ES256.",
    TokenRejected.SIGNATURE: "Invalid ID Token signature.",
    TokenRejected.EXPIRED: "The ID Token has expired.",
    TokenRejected.TOO_EARLY: "The ID Token iat must be in the past.",
    TokenRejected.LIFETIME: "The ID Token exp must be less than 48 hours after its iat.",
}
UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential."
)
PERMISSION_DENIED = (
    "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
)


@dataclass(frozen=True)
class Condition:
    """A small subset of CEL attribute conditions; every part given must hold."""

    subject_prefix: str | None = None  # assertion.sub.startsWith('<prefix>')
    team: str | None = None  # '<team>' in assertion.teams
    claims: Mapping[str, str] = field(default_factory=dict)  # assertion.<name> == '<value>'

    def holds(self, claims: Mapping[str, Any]) -> bool:
        subject = claims.get("sub")
        if self.subject_prefix is not None and not (
            isinstance(subject, str) and subject.startswith(self.subject_prefix)
        ):
            return False
        teams = claims.get("teams")
        if self.team is not None and not (isinstance(teams, list) and self.team in teams):
            return False
        return all(claims.get(name) == value for name, value in self.claims.items())

    def cel(self) -> str:
        """The condition as it would be written on the provider (for messages and docs)."""
        parts = []
        if self.subject_prefix is not None:
            parts.append(f"assertion.sub.startsWith('{self.subject_prefix}')")
        if self.team is not None:
            parts.append(f"'{self.team}' in assertion.teams")
        parts += [f"assertion.{name} == '{value}'" for name, value in self.claims.items()]
        return " && ".join(parts) or "true"


@dataclass(frozen=True)
class Provider:
    """A workload identity pool's OIDC provider."""

    name: str  # //iam.googleapis.com/projects/<number>/locations/global/.../providers/<id>
    issuer_uri: str
    allowed_audiences: tuple[str, ...] = ()
    condition: Condition | None = None
    jwks_json: str | None = None  # an uploaded JWKS (--jwk-json-path): no discovery

    def __post_init__(self) -> None:
        # NOTE: GCP's naming rules live in federation.policy.gcp_names, shared with the tester.
        refused = f"not a workload identity provider resource name: {self.name}"
        try:
            name = ProviderName.parse(self.name)
        except ValueError:
            raise ValueError(refused) from None
        if not self.name.startswith(_PROVIDER_PREFIX) or not is_project_number(name.project):
            raise ValueError(refused)
        problem = name.id_problem()
        if problem is not None:
            raise ValueError(f"{refused} ({problem})")
        if len(self.allowed_audiences) > 10 or any(len(a) > 256 for a in self.allowed_audiences):
            raise ValueError("at most 10 allowed audiences of at most 256 characters")

    @property
    def pool(self) -> str:
        return self.name.removeprefix("//").split("/providers/", 1)[0]

    def accepts(self, audience: object) -> bool:
        expected = set(self.allowed_audiences) or {self.name, f"https:{self.name}"}
        offered = audience if isinstance(audience, list) else [audience]
        return any(isinstance(value, str) and value in expected for value in offered)

    def identities(self, claims: Mapping[str, Any]) -> set[str]:
        """The principal and the principal sets the mapped token belongs to."""
        found = {
            f"principal://{self.pool}/subject/{claims['sub']}",
            f"principalSet://{self.pool}/*",
        }
        teams = claims.get("teams")
        for team in teams if isinstance(teams, list) else []:
            found.add(f"principalSet://{self.pool}/group/{team}")
        if isinstance(claims.get("environment"), str):
            found.add(f"principalSet://{self.pool}/attribute.environment/{claims['environment']}")
        return found


@dataclass(frozen=True)
class Exchange:
    """A token the stand-in accepted, for tests to look at (and verify again)."""

    provider: str
    token: str
    header: dict[str, Any]
    claims: dict[str, Any]


@dataclass(frozen=True)
class Impersonation:
    service_account: str
    principal: str
    scopes: tuple[str, ...]
    lifetime_seconds: int


@dataclass(frozen=True)
class _Federated:
    provider: Provider
    claims: dict[str, Any]
    expires_at: float


class StaticKeys(IssuerKeys):
    """An uploaded JWKS in place of discovery (a private issuer)."""

    def __init__(self, jwks_json: str) -> None:
        # NOTE: no super().__init__(): nothing is fetched, so no HTTP client is made.
        self._keys = KeySet.import_key_set(_loads(jwks_json))  # type: ignore[arg-type]

    def key_set(self, issuer: str, *, refresh: bool = False) -> KeySet:
        return self._keys


class GcpStandIn:
    """The state behind the app: providers, bindings, the tokens it issued."""

    def __init__(
        self,
        providers: Collection[Provider],
        service_accounts: Mapping[str, Collection[str]],
        *,
        clock: Clock,
        keys: IssuerKeys,
        max_lifetime_seconds: int = 3600,
    ) -> None:
        self.providers = {provider.name: provider for provider in providers}
        self.service_accounts = {sa: frozenset(who) for sa, who in service_accounts.items()}
        self.clock = clock
        self.keys = keys
        self.max_lifetime_seconds = max_lifetime_seconds
        self.exchanges: list[Exchange] = []
        self.impersonations: list[Impersonation] = []
        self._federated: dict[str, _Federated] = {}
        self._static = {p.name: StaticKeys(p.jwks_json) for p in providers if p.jwks_json}
        self._lock = threading.Lock()

    def exchange(self, params: Mapping[str, str]) -> JSONResponse:
        if params.get("grant_type") != GRANT_TYPE:
            return _oauth("unsupported_grant_type", 'Invalid value for "grant_type".')
        provider = self.providers.get(params.get("audience", ""))
        if provider is None:
            return _oauth("invalid_request", BAD_AUDIENCE_PARAMETER)
        if params.get("subject_token_type") not in SUBJECT_TOKEN_TYPES:
            return _oauth("invalid_request", 'Invalid value for "subject_token_type".')
        if params.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            return _oauth("invalid_request", 'Invalid value for "requested_token_type".')
        if not params.get("scope", "").split():
            return _oauth("invalid_request", "Scope(s) must be provided.")
        now = self.clock.now().timestamp()
        subject_token = params.get("subject_token", "")
        try:
            verified = self._verify(provider, subject_token, now)
        except TokenRejected as rejected:
            return _oauth("invalid_grant", _REJECTIONS.get(rejected.reason, rejected.message))
        claims = verified.claims
        if not provider.accepts(claims.get("aud")):
            return _oauth("invalid_grant", AUDIENCE_MISMATCH)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            return _oauth("invalid_request", "The mapped attribute google.subject is missing.")
        if len(subject.encode()) > SUBJECT_LIMIT:
            return _oauth("invalid_grant", SUBJECT_TOO_LONG)
        if provider.condition is not None and not provider.condition.holds(claims):
            return _oauth("unauthorized_client", CONDITION_REFUSED)
        lifetime = int(min(FEDERATED_LIFETIME, claims["exp"] - now))
        token = f"ya29.stand-in-sts.{secrets.token_urlsafe(32)}"
        with self._lock:
            self._federated[token] = _Federated(provider, claims, now + lifetime)
            self.exchanges.append(Exchange(provider.name, subject_token, verified.header, claims))
        return JSONResponse(
            {
                "access_token": token,
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "token_type": "Bearer",
                "expires_in": lifetime,
            }
        )

    def _verify(self, provider: Provider, token: str, now: float) -> Verified:
        verified = verify_jwt(
            token,
            self._static.get(provider.name, self.keys),
            algorithms=gcp_token.ALGORITHMS,
            issuers=lambda issuer: issuer == provider.issuer_uri,
            now=now,
            require_kid=gcp_token.REQUIRES_KID,
        )
        if verified.claims["exp"] - verified.claims["iat"] >= MAX_TOKEN_LIFETIME:
            raise TokenRejected(TokenRejected.LIFETIME, _REJECTIONS[TokenRejected.LIFETIME])
        return verified

    def generate(
        self, service_account: str, authorization: str, body: Mapping[str, Any]
    ) -> JSONResponse:
        scheme, _, presented = authorization.partition(" ")
        now = self.clock.now().timestamp()
        with self._lock:
            federated = self._federated.get(presented) if scheme.lower() == "bearer" else None
        if federated is None or federated.expires_at <= now:
            return _google(401, "UNAUTHENTICATED", UNAUTHENTICATED)
        allowed = self.service_accounts.get(service_account)
        if allowed is None:
            unknown = f"Not found; Gaia id not found for email {service_account}"
            return _google(404, "NOT_FOUND", unknown)
        identities = federated.provider.identities(federated.claims)
        if not identities & allowed:
            return _google(403, "PERMISSION_DENIED", PERMISSION_DENIED, denied=True)
        scopes = body.get("scope")
        if not isinstance(scopes, list) or not scopes or not all(map(_text, scopes)):
            return _google(400, "INVALID_ARGUMENT", "Scope required.")
        lifetime = _seconds(body.get("lifetime", "3600s"))
        if lifetime is None or not 1 <= lifetime <= self.max_lifetime_seconds:
            bounds = f"The lifetime must be between 1s and {self.max_lifetime_seconds}s."
            return _google(400, "INVALID_ARGUMENT", bounds)
        principal = f"principal://{federated.provider.pool}/subject/{federated.claims['sub']}"
        with self._lock:
            self.impersonations.append(
                Impersonation(service_account, principal, tuple(scopes), lifetime)
            )
        expires = datetime.fromtimestamp(now + lifetime, UTC)
        return JSONResponse(
            {
                "accessToken": f"ya29.stand-in-sa.{secrets.token_urlsafe(32)}",
                "expireTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )


def gcp_sts_app(
    providers: Collection[Provider],
    service_accounts: Mapping[str, Collection[str]] | None = None,
    *,
    clock: Clock | None = None,
    keys: IssuerKeys | None = None,
    max_lifetime_seconds: int = 3600,
) -> Starlette:
    """The stand-in as an ASGI app; ``app.state.gcp`` is its :class:`GcpStandIn`.

    ``service_accounts`` maps an email to the principals allowed to impersonate it
    (``principal://.../subject/<sub>``, ``principalSet://.../*``, ``.../group/<team>``,
    ``.../attribute.environment/<env>``)."""
    stand_in = GcpStandIn(
        providers,
        service_accounts or {},
        clock=clock or SystemClock(),
        keys=keys or IssuerKeys(),
        max_lifetime_seconds=max_lifetime_seconds,
    )

    async def token(request: Request) -> JSONResponse:
        if request.headers.get("content-type", "").startswith("application/json"):
            # The REST reference's JSON: camelCase or snake_case names, scope a string.
            document = {_snake(k): v for k, v in (await _json_body(request)).items()}
            params = {k: v for k, v in document.items() if isinstance(v, str)}
        else:
            # NOTE: parsed here rather than with request.form(), which needs python-multipart.
            body = (await request.body()).decode("utf-8", "replace")
            params = dict(parse_qsl(body, keep_blank_values=True))
        return await run_in_threadpool(stand_in.exchange, params)

    async def generate(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if not name.endswith(":generateAccessToken"):
            return _google(404, "NOT_FOUND", "Method not found.")
        body = await _json_body(request)
        authorization = request.headers.get("authorization", "")
        return stand_in.generate(name.removesuffix(":generateAccessToken"), authorization, body)

    app = Starlette(
        routes=[
            Route("/v1/token", token, methods=["POST"]),
            Route("/v1/projects/{project}/serviceAccounts/{name}", generate, methods=["POST"]),
        ]
    )
    app.state.gcp = stand_in
    return app


def _oauth(error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


def _google(status: int, code: str, message: str, *, denied: bool = False) -> JSONResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if denied:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "iam.googleapis.com",
                "metadata": {"permission": "iam.serviceAccounts.getAccessToken"},
            }
        ]
    return JSONResponse({"error": error}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        document = await request.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _loads(text: str) -> dict[str, Any]:
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("a JWKS is a JSON object with keys")
    return document


def _text(value: object) -> bool:
    return isinstance(value, str)


def _snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda upper: f"_{upper.group().lower()}", name)


def _seconds(text: object) -> int | None:
    if not isinstance(text, str) or not re.fullmatch(r"\d{1,6}(\.\d+)?s", text):
        return None
    return int(float(text[:-1]))


__all__ = ["Condition", "Exchange", "GcpStandIn", "Impersonation", "Provider", "gcp_sts_app"]
