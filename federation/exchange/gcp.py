"""GCP workload identity federation, through google-auth's own machinery.

Three ways in, all minting a fresh token per exchange:

- the executable path: :func:`credential_config` writes the ``external_account``
  configuration that google-auth and gcloud read; its command runs
  ``federation issue-gcp-token``, which prints :func:`executable_response`
  (AIP-4117, the shape of Oz's ``issue-gcp-token``);
- the library path: :class:`FederationTokenSupplier` plugs into google-auth's
  ``identity_pool.Credentials(subject_token_supplier=...)``;
- :func:`access_token`: the STS exchange (and service-account impersonation) done by
  google-auth's identity-pool credentials, with GCP's refusals turned into
  :class:`~federation.errors.FederationError` s that say what to check.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from google.auth import exceptions, identity_pool, transport
from google.auth.transport.requests import Request

from federation.errors import (
    FederationError,
    InvalidRequest,
    NotAuthorized,
    ResourceNotFound,
    ResourceUnavailable,
)
from federation.exchange.source import AccessToken, MintedToken, TokenSource

STS_URL = "https://sts.googleapis.com/v1/token"
IAM_URL = "https://iamcredentials.googleapis.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a URN
TOKEN_TYPES = (ID_TOKEN_TYPE, JWT_TOKEN_TYPE)
EXECUTABLE_ERROR_CODE = "TOKEN_ISSUANCE_FAILED"
# google-auth runs an executable for at least 5 and at most 120 seconds.
TIMEOUT_MILLIS_RANGE = (5_000, 120_000)

_PROVIDER = re.compile(
    r"//iam\.googleapis\.com/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/workloadIdentityPools/(?P<pool>[^/]+)/providers/(?P<provider>[^/]+)"
)
_PROVIDER_FORM = (
    "//iam.googleapis.com/projects/<project number>/locations/global/"
    "workloadIdentityPools/<pool>/providers/<provider>"
)
_SERVICE_ACCOUNT = re.compile(r"[^@\s/:]+@[^@\s/:]+|\d{1,30}")


def provider_name(audience: str) -> str:
    """The provider's resource name (the STS ``audience``) from ``audience`` with or
    without ``https:``; :class:`InvalidRequest` naming the mistake when it is not one."""
    name = audience.removeprefix("https:")
    match = _PROVIDER.fullmatch(name)
    if match is None:
        raise InvalidRequest(
            f"the audience must be a workload identity provider's full resource name, "
            f"{_PROVIDER_FORM} (got {audience[:200]!r})"
        )
    if not match["project"].isdigit():
        raise InvalidRequest(
            f"the audience names project {match['project']!r}: GCP wants the project "
            "number, not its id (gcloud projects describe PROJECT --format='value(projectNumber)')"
        )
    return name


def principal_identifier(audience: str, subject: str) -> str:
    """``principal://.../subject/<sub>``: what an IAM binding names for ``subject``."""
    pool = provider_name(audience).removeprefix("//").split("/providers/", 1)[0]
    return f"principal://{pool}/subject/{subject}"


def impersonation_url(service_account: str, base: str = IAM_URL) -> str:
    if _SERVICE_ACCOUNT.fullmatch(service_account) is None:
        raise InvalidRequest(
            "the service account must be an email (name@project.iam.gserviceaccount.com) "
            "or a numeric unique id"
        )
    return f"{base.rstrip('/')}/v1/projects/-/serviceAccounts/{service_account}:generateAccessToken"


# ---- the executable path (AIP-4117) -----------------------------------------------------


def executable_response(token: MintedToken, token_type: str) -> dict[str, Any]:
    """What ``issue-gcp-token`` prints on success: Oz's AIP-4117 executable response."""
    if token_type not in TOKEN_TYPES:
        raise InvalidRequest(f"token type {token_type!r} is not one of {', '.join(TOKEN_TYPES)}")
    return {
        "version": 1,
        "success": True,
        "token_type": token_type,
        "id_token": token.token,
        "expiration_time": int(token.expires_at.timestamp()),
    }


def executable_error(message: str) -> dict[str, Any]:
    """What ``issue-gcp-token`` prints on stderr when it fails (then exits 1)."""
    return {"version": 1, "success": False, "code": EXECUTABLE_ERROR_CODE, "message": message}


def credential_config(
    *,
    audience: str,
    command: str | Sequence[str],
    service_account: str | None = None,
    token_url: str = STS_URL,
    impersonation_url_base: str = IAM_URL,
    timeout_millis: int = 30_000,
    lifetime_seconds: int | None = None,
) -> dict[str, Any]:
    """The executable-sourced ``external_account`` configuration that google-auth
    (``google.auth.default()``) and gcloud read; no secret is ever part of it."""
    low, high = TIMEOUT_MILLIS_RANGE
    if not low <= timeout_millis <= high:
        raise InvalidRequest(f"timeout_millis must be between {low} and {high}")
    line = command if isinstance(command, str) else shlex.join(command)
    config: dict[str, Any] = {
        "type": "external_account",
        "audience": provider_name(audience),
        "subject_token_type": ID_TOKEN_TYPE,
        "token_url": token_url,
        "credential_source": {"executable": {"command": line, "timeout_millis": timeout_millis}},
    }
    if service_account is not None:
        config["service_account_impersonation_url"] = impersonation_url(
            service_account, impersonation_url_base
        )
        if lifetime_seconds is not None:
            config["service_account_impersonation"] = {"token_lifetime_seconds": lifetime_seconds}
    return config


# ---- the library path ----------------------------------------------------------------


class FederationTokenSupplier(identity_pool.SubjectTokenSupplier):
    """google-auth's subject-token supplier interface, backed by a :class:`TokenSource`.

    Every call mints a fresh token (google-auth does not cache subject tokens, and
    ours are short-lived), for the audience google-auth asks with unless
    ``token_audience`` says otherwise (a provider with its own allowed audiences).
    A failure is a ``RefreshError``, as the interface says, caused by the
    :class:`FederationError`.
    """

    def __init__(
        self,
        source: TokenSource,
        *,
        duration: str | None = None,
        subject_template: Sequence[str] | None = None,
        token_audience: str | None = None,
    ) -> None:
        self.source = source
        self.duration = duration
        self.subject_template = subject_template
        self.token_audience = token_audience
        self.last: MintedToken | None = None

    def get_subject_token(self, context: Any, request: Any) -> str:
        audience = self.token_audience or str(context.audience)
        try:
            minted = self.source.mint(
                audience, duration=self.duration, subject_template=self.subject_template
            )
        except FederationError as error:
            raise exceptions.RefreshError(  # type: ignore[no-untyped-call]
                f"the issuer did not issue a token: {error.message}", retryable=error.retryable
            ) from error
        self.last = minted
        return minted.token


def identity_pool_credentials(
    supplier: FederationTokenSupplier,
    *,
    audience: str,
    service_account: str | None = None,
    scopes: Sequence[str] = (CLOUD_PLATFORM,),
    token_url: str = STS_URL,
    impersonation_url_base: str = IAM_URL,
    lifetime_seconds: int = 3600,
) -> Any:
    """google-auth ``identity_pool.Credentials`` fed by ``supplier``."""
    options: dict[str, Any] = {}
    if service_account is not None:
        options["service_account_impersonation_url"] = impersonation_url(
            service_account, impersonation_url_base
        )
        options["service_account_impersonation_options"] = {
            "token_lifetime_seconds": lifetime_seconds
        }
    return identity_pool.Credentials(  # type: ignore[no-untyped-call]
        audience=provider_name(audience),
        subject_token_type=JWT_TOKEN_TYPE,
        token_url=token_url,
        subject_token_supplier=supplier,
        scopes=list(scopes),
        **options,
    )


def access_token(
    source: TokenSource,
    *,
    audience: str,
    service_account: str | None = None,
    scopes: Sequence[str] = (CLOUD_PLATFORM,),
    token_url: str = STS_URL,
    impersonation_url_base: str = IAM_URL,
    lifetime_seconds: int = 3600,
    duration: str | None = None,
    subject_template: Sequence[str] | None = None,
    token_audience: str | None = None,
    request: transport.Request | None = None,
) -> AccessToken:
    """A GCP access token for the run: STS federated token, or, with
    ``service_account``, that account's token through IAM Credentials.

    ``audience`` is the provider's resource name (``https:`` form accepted); the
    token's ``aud`` is that name unless ``token_audience`` is given. ``request`` is
    google-auth's transport (default: a requests session, closed afterwards).
    """
    supplier = FederationTokenSupplier(
        source,
        duration=duration,
        subject_template=subject_template,
        token_audience=token_audience or audience,
    )
    creds = identity_pool_credentials(
        supplier,
        audience=audience,
        service_account=service_account,
        scopes=scopes,
        token_url=token_url,
        impersonation_url_base=impersonation_url_base,
        lifetime_seconds=lifetime_seconds,
    )
    session = requests.Session() if request is None else None
    tracking = _Tracking(request or Request(session))
    try:
        creds.refresh(tracking)
    except exceptions.GoogleAuthError as exc:
        raise _explain(exc, tracking, supplier, audience, service_account, token_url) from exc
    finally:
        if session is not None:
            session.close()
    expiry: datetime = creds.expiry
    return AccessToken(token=str(creds.token), expires_at=expiry.replace(tzinfo=UTC))


class _Tracking(transport.Request):
    """Passes requests on, remembering the last URL and status: which service failed."""

    def __init__(self, inner: transport.Request) -> None:
        self.inner = inner
        self.url: str | None = None
        self.status: int | None = None

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        self.url, self.status = url, None
        response = self.inner(
            url, method=method, body=body, headers=headers, timeout=timeout, **kwargs
        )
        self.status = int(response.status)
        return response


# ---- what GCP's refusals mean --------------------------------------------------------

_TIMES = "GCP wants iat in the past and exp less than 48 hours after it: check the clock"
# Substrings of GCP's error_description → what to check; the first that matches answers.
_STS_HINTS = {
    "127 bytes": "google.subject (mapped from sub) may be at most 127 bytes: use a shorter "
    "--subject-template, or map google.subject from a shorter expression",
    "attribute condition": "the provider's attribute condition refused the token's claims: "
    "compare it with the claims (`federation decode`), e.g. the team in assertion.teams",
    'value for "audience"': f"the audience must be the provider's full resource name, "
    f"{_PROVIDER_FORM}, with the project number (not the id), and the provider must exist",
    "audience": "the token's aud must be one of the provider's allowed audiences, or, when it "
    "has none, the provider's full resource name with the project number "
    "(//iam.googleapis.com/projects/<number>/..., with or without https:)",
    "issuer": "the provider's issuer URI must be exactly {issuer}, and its discovery document "
    "and JWKS must be reachable from Google (or upload the JWKS with --jwk-json-path from "
    "`federation publish --gcp-jwks`)",
    "signature": "the signature did not verify against the provider's keys: if the provider "
    "holds an uploaded JWKS (--jwk-json-path), upload it again after a key rotation",
    "expired": "the token had expired when GCP saw it: check this machine's clock",
    "in the past": _TIMES,
    "48 hours": _TIMES,
}
_DEFAULT_HINT = "check the provider's issuer URI ({issuer}), allowed audiences and condition"


def _explain(
    exc: exceptions.GoogleAuthError,
    tracking: _Tracking,
    supplier: FederationTokenSupplier,
    audience: str,
    service_account: str | None,
    token_url: str,
) -> FederationError:
    if isinstance(exc.__cause__, FederationError):
        return exc.__cause__  # the issuer refused to mint: its own error says why
    minted = supplier.last
    iam = service_account is not None and tracking.url is not None and tracking.url != token_url
    service = "gcp-iam" if iam else "gcp-sts"
    if isinstance(exc, exceptions.TransportError):
        where = f"IAM Credentials at {tracking.url}" if iam else f"GCP STS at {token_url}"
        setting = "impersonation URL base" if iam else "token URL"
        return ResourceUnavailable(
            f"cannot reach {where}; check the network and the {setting}",
            extensions=_upstream(service, "unreachable"),
        )
    body = _json(exc.args[1] if len(exc.args) > 1 else None)
    if iam:
        return _iam_error(body, tracking.status, audience, service_account or "", minted)
    code = str(body.get("error") or "unknown")
    description = str(body.get("error_description") or (exc.args[0] if exc.args else ""))
    said = description.lower()
    hint = next((text for key, text in _STS_HINTS.items() if key in said), _DEFAULT_HINT)
    hint = hint.format(issuer=minted.issuer if minted else "the token's iss")
    detail = f"GCP STS refused the token ({code}: {description[:300]}); {hint}"
    status = tracking.status or 0
    if status >= 500:
        return ResourceUnavailable(detail, extensions=_upstream(service, code))
    kind = InvalidRequest if code in {"invalid_request", "invalid_scope"} else NotAuthorized
    return kind(detail, extensions=_upstream(service, code))


def _iam_error(
    body: dict[str, Any],
    status: int | None,
    audience: str,
    service_account: str,
    minted: MintedToken | None,
) -> FederationError:
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    code = str(error.get("status") or status or "unknown")
    said = f"{code}: {str(error.get('message') or '')[:300]}"
    principal = principal_identifier(audience, minted.subject) if minted else "the mapped principal"
    extensions = _upstream("gcp-iam", code)
    if status == 404 or code == "NOT_FOUND":
        return ResourceNotFound(
            f"GCP IAM has no service account {service_account} ({said}); check its email "
            "or unique id and the project it lives in",
            extensions=extensions,
        )
    if status is not None and status >= 500:
        return ResourceUnavailable(f"GCP IAM failed ({said})", extensions=extensions)
    if status == 400:
        return InvalidRequest(
            f"GCP IAM refused the request ({said}); a lifetime above 3600s needs the "
            "constraints/iam.allowServiceAccountCredentialLifetimeExtension policy",
            extensions=extensions,
        )
    return NotAuthorized(
        f"GCP IAM refused to let {principal} impersonate {service_account} ({said}); grant "
        "that principal (or a principalSet:// that contains it) "
        "roles/iam.workloadIdentityUser on the service account, and check that the account "
        "exists",
        extensions=extensions,
    )


def _upstream(service: str, code: str) -> dict[str, Any]:
    return {"upstream": {"service": service, "code": code}}


def _json(raw: object) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
