"""A local stand-in for GCP STS and IAM Credentials (no emulator of either exists).

``POST /v1/token`` takes the RFC 8693 exchange as google-auth's ``google.oauth2.sts``
sends it (form, or JSON as in the REST reference) and checks the token as a workload
identity pool's OIDC provider does before answering: the provider's issuer URI equals
``iss``; RS256 or ES256 with a ``kid`` (the header rule of
:mod:`federation.policy.gcp_token`, which the tester applies too); the signature
against the issuer's JWKS (found through discovery, or the provider's uploaded
``jwksJson``); ``iat`` in the past and ``exp`` less than 48 hours after it; the
audience rule; then the provider's attribute mapping and attribute condition, in CEL,
evaluated by the policy tester (:mod:`federation.policy.gcp_mapping` on
:mod:`federation.policy.gcp_cel`), so that ``stand-in gcp`` and ``policy test gcp``
answer a token alike: ``google.subject`` at most 127 bytes, every mapping must evaluate,
the condition must be true. A mapping or condition GCP would refuse to save is refused
when the provider is made, as is a provider name against GCP's ID rules
(:mod:`federation.policy.gcp_names`). Refusals are GCP's OAuth error JSON with GCP's
messages.

``POST /v1/projects/-/serviceAccounts/{sa}:generateAccessToken`` (Bearer: a federated
token issued here) allows only the principals configured for that service account,
matched against the mapped identity by the tester's member rule
(:func:`federation.policy.gcp.admits`).

Unless a provider is given its own, the attribute mapping is the examples' one, written
so that a token without ``teams`` or ``environment`` still maps: ``google.subject =
assertion.sub``, ``google.groups`` from ``assertion.teams``, ``attribute.environment``
from ``assertion.environment``.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from federation.clock import Clock, SystemClock
from federation.policy import gcp, gcp_cel, gcp_mapping, gcp_token
from federation.policy.gcp_mapping import Mapped
from federation.policy.gcp_names import ProviderName, is_project_number
from federation.stand_ins.issuers import (
    IssuerKeys,
    StaticKeys,
    TokenRejected,
    Verified,
    verify_jwt,
)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
SUBJECT_TOKEN_TYPES = frozenset(
    {"urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token"}
)
SUBJECT_LIMIT = 127  # bytes of google.subject
DEFAULT_MAPPING: Mapping[str, str] = {
    gcp_mapping.SUBJECT: "assertion.sub",
    gcp_mapping.GROUPS: "has(assertion.teams) ? assertion.teams : []",
    "attribute.environment": "has(assertion.environment) ? assertion.environment : []",
}
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
    """A shorthand for a common attribute condition: every part given must hold. It
    stands for the CEL of :meth:`cel`, which is what the provider evaluates."""

    subject_prefix: str | None = None  # assertion.sub.startsWith('<prefix>')
    team: str | None = None  # '<team>' in assertion.teams
    claims: Mapping[str, str] = field(default_factory=dict)  # assertion.<name> == '<value>'

    def cel(self) -> str:
        """The condition as it is written on the provider."""
        parts = []
        if self.subject_prefix is not None:
            parts.append(f"assertion.sub.startsWith({gcp_cel.quote(self.subject_prefix)})")
        if self.team is not None:
            parts.append(f"{gcp_cel.quote(self.team)} in assertion.teams")
        parts += [
            f"assertion.{name} == {gcp_cel.quote(value)}" for name, value in self.claims.items()
        ]
        return " && ".join(parts) or "true"


@dataclass(frozen=True)
class Provider:
    """A workload identity pool's OIDC provider."""

    name: str  # //iam.googleapis.com/projects/<number>/locations/global/.../providers/<id>
    issuer_uri: str
    allowed_audiences: tuple[str, ...] = ()
    condition: Condition | str | None = None  # the attributeCondition, CEL or shorthand
    jwks_json: str | None = None  # an uploaded JWKS (--jwk-json-path): no discovery
    attribute_mapping: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MAPPING))

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
        # NOTE: the tester's rules for what GCP would refuse to save (CEL included).
        problem = gcp_mapping.problem(dict(self.attribute_mapping), self.attribute_condition)
        if problem is not None:
            raise ValueError(problem)

    @property
    def parsed(self) -> ProviderName:
        return ProviderName.parse(self.name)

    @property
    def pool(self) -> str:
        return self.name.removeprefix("//").split("/providers/", 1)[0]

    @property
    def attribute_condition(self) -> str | None:
        """The condition in CEL, as the provider has it (None: no condition)."""
        if isinstance(self.condition, Condition):
            return self.condition.cel()
        return self.condition or None

    def accepts(self, audience: object) -> bool:
        expected = set(self.allowed_audiences) or set(self.parsed.default_audiences)
        offered = audience if isinstance(audience, list) else [audience]
        return any(isinstance(value, str) and value in expected for value in offered)


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
    mapped: Mapped
    expires_at: float


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
        # NOTE: the mapping and the condition are the tester's (CEL, GCP's rules).
        mapped = gcp_mapping.map_attributes(provider.attribute_mapping, claims)
        refused = _mapping_refusal(mapped)
        if refused is not None:
            return refused
        condition = gcp_mapping.check_condition(provider.attribute_condition, claims, mapped)
        if condition.refusal is not None:
            return _oauth("unauthorized_client", CONDITION_REFUSED)
        lifetime = int(min(FEDERATED_LIFETIME, claims["exp"] - now))
        token = f"ya29.stand-in-sts.{secrets.token_urlsafe(32)}"
        with self._lock:
            self._federated[token] = _Federated(provider, mapped, now + lifetime)
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
        name = federated.provider.parsed
        if not any(gcp.admits(member, name, federated.mapped) for member in allowed):
            return _google(403, "PERMISSION_DENIED", PERMISSION_DENIED, denied=True)
        scopes = body.get("scope")
        if not isinstance(scopes, list) or not scopes or not all(map(_text, scopes)):
            return _google(400, "INVALID_ARGUMENT", "Scope required.")
        lifetime = _seconds(body.get("lifetime", "3600s"))
        if lifetime is None or not 1 <= lifetime <= self.max_lifetime_seconds:
            bounds = f"The lifetime must be between 1s and {self.max_lifetime_seconds}s."
            return _google(400, "INVALID_ARGUMENT", bounds)
        principal = name.subject_member(str(federated.mapped.subject))
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


def _mapping_refusal(mapped: Mapped) -> JSONResponse | None:
    """GCP's answer to a token whose attributes do not map, or None when they do."""
    if mapped.outcome.refusal is None:
        return None
    if mapped.subject is None:
        return _oauth("invalid_request", "The mapped attribute google.subject is missing.")
    if len(mapped.subject.encode()) > SUBJECT_LIMIT:
        return _oauth("invalid_grant", SUBJECT_TOO_LONG)
    # NOTE: GCP's words for another mapping that fails are not known: the tester's.
    return _oauth("invalid_grant", mapped.outcome.refusal)


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


def _text(value: object) -> bool:
    return isinstance(value, str)


def _snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda upper: f"_{upper.group().lower()}", name)


def _seconds(text: object) -> int | None:
    if not isinstance(text, str) or not re.fullmatch(r"\d{1,6}(\.\d+)?s", text):
        return None
    return int(float(text[:-1]))


__all__ = [
    "DEFAULT_MAPPING",
    "Condition",
    "Exchange",
    "GcpStandIn",
    "Impersonation",
    "Provider",
    "StaticKeys",
    "gcp_sts_app",
]
