"""Microsoft Entra workload identity federation: our token as a client assertion.

Entra trusts an app registration or user-assigned managed identity for a token when one
of its *federated identity credentials* names the token's ``iss`` and ``sub`` exactly
(byte for byte, case-sensitive) and the audience ``api://AzureADTokenExchange``; the
token must be signed RS256. The token is then the ``client_assertion`` of an OAuth 2.0
client-credentials request to ``{authority}/{tenant}/oauth2/v2.0/token``.

A fresh assertion is minted for every token request: an assertion reused after it
expired is refused with AADSTS700024, the classic failure of long jobs.

Two ways in:

- :func:`assertion_callback` for azure-identity's ``ClientAssertionCredential(tenant_id,
  client_id, func)`` (and MSAL's ``client_assertion`` callable), which call it whenever
  they need a new access token;
- :func:`client_credentials_token`, the request itself, made with authlib's OAuth 2.0
  client; Entra's refusals become :class:`~federation.errors.FederationError`\\ s that say
  what to check, with what Entra answered in ``extensions["upstream"]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from federation._internal.urls import is_loopback
from federation.clock import Clock, SystemClock
from federation.domain.tokens import ENTRA_AUDIENCE
from federation.errors import (
    FederationError,
    InvalidRequest,
    NotAuthorized,
    ResourceUnavailable,
)
from federation.exchange.source import AccessToken, MintedToken, TokenSource

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "ASSERTION_DURATION",
    "ASSERTION_TYPE",
    "DEFAULT_AUTHORITY",
    "DEFAULT_SCOPE",
    "assertion_callback",
    "client_credentials_token",
    "mint_assertion",
    "token_endpoint",
]

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_SCOPE = "https://management.azure.com/.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# NOTE: an assertion is spent at once; a short life limits what a leaked one is worth.
ASSERTION_DURATION = "10m"
ALGORITHM = "RS256"  # the only algorithm Entra supports for federated credentials

_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}")
_AADSTS = re.compile(r"AADSTS(\d+)")


def mint_assertion(
    source: TokenSource,
    *,
    subject_template: Sequence[str] | None = None,
    audience: str = ENTRA_AUDIENCE,
    duration: str | None = ASSERTION_DURATION,
) -> MintedToken:
    """A fresh RS256 token for Entra (``audience`` differs only in sovereign clouds)."""
    return source.mint(
        audience,
        duration=duration,
        subject_template=tuple(subject_template) if subject_template else None,
        algorithm=ALGORITHM,
    )


def assertion_callback(
    source: TokenSource,
    *,
    subject_template: Sequence[str] | None = None,
    audience: str = ENTRA_AUDIENCE,
    duration: str | None = ASSERTION_DURATION,
) -> Callable[[], str]:
    """The ``func`` of azure-identity's ``ClientAssertionCredential``: every call mints a
    new assertion, so a credential refreshing its token hours later never presents an
    expired one."""
    template = tuple(subject_template) if subject_template else None

    def assertion() -> str:
        return mint_assertion(
            source, subject_template=template, audience=audience, duration=duration
        ).token

    return assertion


def token_endpoint(authority: str, tenant_id: str) -> str:
    """``{authority}/{tenant}/oauth2/v2.0/token``, once both are known to be sound."""
    return f"{_authority(authority)}/{quote(_tenant(tenant_id), safe='')}/oauth2/v2.0/token"


def client_credentials_token(
    source: TokenSource,
    *,
    tenant_id: str,
    client_id: str,
    scope: str = DEFAULT_SCOPE,
    authority: str = DEFAULT_AUTHORITY,
    subject_template: Sequence[str] | None = None,
    audience: str = ENTRA_AUDIENCE,
    http: httpx2.BaseTransport | None = None,
    clock: Clock | None = None,
    timeout: float = 30.0,
) -> AccessToken:
    """An Entra access token for ``scope``, for the app or managed identity ``client_id``
    whose federated identity credential trusts our tokens.

    ``http`` is the transport of authlib's client (its httpx2 client); tests give a
    ``MockTransport``. A fresh assertion is minted for every call."""
    # NOTE: imported here: authlib's client pulls in joserfc and anyio, which the CLI
    # must not pay for on every `federation` start.
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client
    from httpx2 import HTTPError, HTTPStatusError, TimeoutException

    url = token_endpoint(authority, tenant_id)
    if not client_id.strip() or any(not ch.isprintable() or ch.isspace() for ch in client_id):
        raise InvalidRequest("the client id must be the app's or managed identity's client id")
    moment = (clock or SystemClock()).now()
    minted = mint_assertion(source, subject_template=subject_template, audience=audience)
    context = _Context(
        minted=minted, tenant_id=tenant_id, client_id=client_id, scope=scope, url=url
    )
    answered: dict[str, Any] = {}

    def keep(response: Any) -> Any:
        # What Entra said besides `error` and `error_description` (error_codes, the
        # correlation id): authlib keeps only those two.
        answered["status"] = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            answered["body"] = body
        return response

    # The client authenticates with the assertion in the body, so authlib's own client
    # authentication is "none" (which still sends client_id).
    method = "none"
    with OAuth2Client(
        client_id=client_id, token_endpoint_auth_method=method, transport=http, timeout=timeout
    ) as client:
        client.register_compliance_hook("access_token_response", keep)
        try:
            token = client.fetch_token(
                url,
                grant_type="client_credentials",
                scope=scope,
                client_assertion_type=ASSERTION_TYPE,
                client_assertion=minted.token,
            )
        except OAuthError as exc:
            body = answered.get("body", {})
            raise context.refusal(
                str(exc.error), str(exc.description or ""), body, answered.get("status")
            ) from exc
        except TimeoutException as exc:
            raise ResourceUnavailable(
                f"the Entra authority at {url} did not answer in time", extensions=_upstream()
            ) from exc
        except HTTPStatusError as exc:
            status = exc.response.status_code
            kind = ResourceUnavailable if status >= 500 or status == 429 else InvalidRequest
            raise kind(
                f"the Entra token endpoint {url} answered HTTP {status} without an OAuth "
                "error; check --authority",
                extensions=_upstream(),
            ) from exc
        except HTTPError as exc:
            raise ResourceUnavailable(
                f"cannot reach the Entra authority at {url} ({type(exc).__name__}); check "
                "--authority and the network",
                extensions=_upstream(),
            ) from exc
        except ValueError as exc:
            raise ResourceUnavailable(
                f"the Entra token endpoint {url} did not answer JSON; check --authority",
                extensions=_upstream(),
            ) from exc
    return _access_token(dict(token), moment, url)


def _access_token(token: dict[str, Any], moment: datetime, url: str) -> AccessToken:
    access, kind = token.get("access_token"), token.get("token_type", "Bearer")
    if not isinstance(access, str) or not access or not isinstance(kind, str):
        raise ResourceUnavailable(f"{url} answered without an access token", extensions=_upstream())
    try:
        lifetime = int(token["expires_in"])
    except (KeyError, TypeError, ValueError):
        raise ResourceUnavailable(
            f"{url} answered without expires_in", extensions=_upstream()
        ) from None
    return AccessToken(
        token=access, expires_at=moment + timedelta(seconds=lifetime), token_type=kind
    )


def _authority(authority: str) -> str:
    text = authority.strip().rstrip("/")
    if "://" not in text:
        text = f"https://{text}"  # a bare host, as AZURE_AUTHORITY_HOST may be
    parts = urlsplit(text)
    if parts.query or parts.fragment or not parts.hostname:
        raise InvalidRequest(f"the authority {authority!r} is not a URL like {DEFAULT_AUTHORITY}")
    # NOTE: the assertion is a bearer credential until it expires: never over plain
    # http, except to a stand-in on this machine.
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise InvalidRequest(f"the authority {authority!r} must be an https URL")
    return text


def _tenant(tenant_id: str) -> str:
    if not _TENANT.fullmatch(tenant_id):
        raise InvalidRequest(
            "the tenant id must be the directory's id (a GUID) or one of its domain names"
        )
    return tenant_id


_NO_CREDENTIAL = "Entra found no federated identity credential on app {app} for this token ({code})"
_SCOPE = (
    "Entra refused the scope {scope!r} ({code}): client credentials take a resource's "
    ".default scope, such as {default_scope}"
)
# What to check, by AADSTS code: (error class, retryable (None: the class's), detail).
_ADVICE: dict[int, tuple[type[FederationError], bool | None, str]] = {
    700211: (
        NotAuthorized,
        None,
        _NO_CREDENTIAL + ": no credential's issuer equals the token's iss {iss!r}; it must "
        "match byte for byte: same scheme, host and port, no trailing slash",
    ),
    700213: (
        NotAuthorized,
        None,
        _NO_CREDENTIAL + ": no credential with issuer {iss} has the subject we sent, {sub!r}; "
        "the subject must equal sub exactly and matching is case-sensitive (change the "
        "credential, or --subject-template)",
    ),
    700212: (
        NotAuthorized,
        None,
        _NO_CREDENTIAL + ": the credential's audience must be {audience}, the audience of "
        "the tokens we sign for Entra",
    ),
    70021: (
        NotAuthorized,
        None,
        _NO_CREDENTIAL + ": none matches issuer {iss!r}, subject {sub!r} and audience "
        "{audience}; check all three (issuer byte for byte, no trailing slash; subject "
        "exact and case-sensitive), and if the credential was created in the last few "
        "minutes, wait a few minutes: it takes time to propagate",
    ),
    700024: (
        NotAuthorized,
        True,
        "Entra says the assertion is not within its valid time range ({code}); each "
        "request carries a freshly minted one, so check the clocks of the issuer and of "
        "this machine, then try again",
    ),
    700027: (
        NotAuthorized,
        None,
        "Entra could not verify the assertion's signature ({code}): it must find the RS256 "
        "key in the JWKS that {iss}/.well-known/openid-configuration points to",
    ),
    50166: (
        ResourceUnavailable,
        None,
        "Entra could not fetch the discovery document or JWKS of {iss} ({code}): the "
        "issuer must be reachable from the internet over https",
    ),
    700016: (
        InvalidRequest,
        None,
        "Entra has no application {app} in tenant {tenant} ({code}): check --client-id "
        "(the client id, not the object id) and --tenant-id",
    ),
    90002: (InvalidRequest, None, "Entra has no tenant {tenant} ({code}): check --tenant-id"),
    70011: (InvalidRequest, None, _SCOPE),
    1002012: (InvalidRequest, None, _SCOPE),
}
_ADVICE[7002138] = _ADVICE[700213]


def _upstream(code: str | None = None, aadsts: int | None = None, **more: Any) -> dict[str, Any]:
    return {"upstream": {"service": "entra", "code": code, "aadsts": aadsts, **more}}


class _Context:
    """What was asked, for messages that say what to check."""

    def __init__(
        self, *, minted: MintedToken, tenant_id: str, client_id: str, scope: str, url: str
    ) -> None:
        self.minted = minted
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.scope = scope
        self.url = url

    def refusal(
        self, error: str, description: str, body: dict[str, Any], status: int | None
    ) -> FederationError:
        """The FederationError for an OAuth error answer of Entra."""
        codes = body.get("error_codes")
        number = None
        if isinstance(codes, list) and codes and isinstance(codes[0], int):
            number = codes[0]
        elif found := _AADSTS.search(description):
            number = int(found.group(1))
        more = {}
        if isinstance(body.get("correlation_id"), str):
            more["correlation_id"] = body["correlation_id"]
        extensions = _upstream(error, number, **more)
        kind, retryable, detail = self._explain(error, number, description, status)
        return kind(detail, retryable=retryable, extensions=extensions)

    def _explain(
        self, error: str, number: int | None, description: str, status: int | None
    ) -> tuple[type[FederationError], bool | None, str]:
        code = f"AADSTS{number}" if number is not None else error
        facts = {
            "code": code,
            "iss": self.minted.issuer,
            "sub": self.minted.subject,
            "app": self.client_id,
            "tenant": self.tenant_id,
            "scope": self.scope,
            "audience": ENTRA_AUDIENCE,
            "default_scope": DEFAULT_SCOPE,
        }
        if error == "invalid_scope" and number not in _ADVICE:
            number = 70011
        if number in _ADVICE:
            kind, retryable, text = _ADVICE[number]
            return kind, retryable, text.format(**facts)
        summary = self._summary(description)
        if status == 429 or error in ("temporarily_unavailable", "server_error"):
            return ResourceUnavailable, True, f"Entra is unavailable ({code}): {summary}"
        refused = error in ("invalid_client", "unauthorized_client")
        kind = NotAuthorized if refused else InvalidRequest
        return kind, None, f"Entra refused the token request ({code}): {summary}"

    def _summary(self, description: str) -> str:
        # NOTE: Entra's text goes to logs and terminals: never let it carry the token.
        text = description.replace(self.minted.token, "[assertion]")
        text = text.split(" Trace ID:", 1)[0].strip()
        text = _AADSTS.sub("", text, count=1).lstrip(": ").strip()
        return text[:300] or "no description"
