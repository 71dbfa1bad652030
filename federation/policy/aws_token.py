"""What STS checks of a web identity token before it reads the trust policy.

The token's issuer must have an IAM OIDC provider (compared byte for byte with ``iss``:
``No OpenIDConnect provider found``), its audience must be one of the provider's client
IDs (``Incorrect token audience``), and it must not have expired (``Token expired``),
give or take AWS's documented five minutes of clock skew past ``exp``. AWS documents no
allowance for ``iat`` or ``nbf``, so none is assumed (and neither is checked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from federation.errors import InvalidRequest
from federation.policy.aws_context import provider_name, strings
from federation.policy.aws_document import provider_arn_parts
from federation.policy.result import Check

# AWS accepts a web identity token up to five minutes after its exp (clock skew).
EXPIRY_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Provider:
    name: str  # issuer.example.com/path: the key prefix
    arn: str | None  # None: any account's provider for `name`


def provider(
    claims: Mapping[str, Any],
    provider_arn: str | None,
    checks: list[Check],
    refusals: list[str],
    warnings: list[str],
) -> Provider | None:
    parts = provider_arn_parts(provider_arn) if provider_arn is not None else None
    if provider_arn is not None and parts is None:
        raise InvalidRequest(f"not an IAM OIDC provider ARN: {provider_arn!r}")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        checks.append(Check("token: iss", False, {"iss": issuer}, "STS finds the provider by iss"))
        refusals.append(
            "the token has no iss claim, so STS finds no OIDC provider for it "
            "(No OpenIDConnect provider found)"
        )
        return Provider(parts[2], provider_arn) if parts else None
    name = provider_name(issuer)
    if parts is None:
        checks.append(Check("token: iss", True, {"iss": issuer, "provider": name}))
        if not issuer.startswith("https://"):
            warnings.append(
                f"the issuer {issuer} is not https://; IAM accepts only https provider URLs, "
                f"so AWS could not trust it (evaluated as https://{name})"
            )
        return Provider(name, None)
    url = f"https://{parts[2]}"
    matched = issuer == url
    checks.append(
        Check(
            "token: iss has the IAM OIDC provider",
            matched,
            {"iss": issuer, "provider_arn": provider_arn, "provider_url": url},
            "" if matched else "STS compares the provider URL with iss byte for byte",
        )
    )
    if not matched:
        refusals.append(
            f"No OpenIDConnect provider found in your account for {issuer}: {provider_arn} "
            f"is the provider for {url}, and STS compares it with iss byte for byte"
        )
    return Provider(parts[2], provider_arn)


def audience(
    claims: Mapping[str, Any],
    client_ids: Sequence[str] | None,
    checks: list[Check],
    refusals: list[str],
) -> None:
    if client_ids is None:
        return
    if isinstance(client_ids, str):
        client_ids = (client_ids,)
    audiences = list(strings(claims.get("aud")))
    passed = any(audience in client_ids for audience in audiences)
    checks.append(
        Check(
            "token: aud among the provider's client IDs",
            passed,
            {"token": audiences, "client_ids": list(client_ids)},
        )
    )
    if not passed:
        refusals.append(
            f"Incorrect token audience: the token's aud {audiences} is none of the "
            f"provider's client IDs {list(client_ids)}, which STS checks before the trust "
            "policy (InvalidIdentityToken)"
        )


def expiry(
    claims: Mapping[str, Any],
    now: datetime | None,
    checks: list[Check],
    refusals: list[str],
    warnings: list[str],
) -> None:
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    current = int(moment.timestamp())
    expiry = claims.get("exp")
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        checks.append(Check("token: exp", False, {"exp": expiry}, "exp must be a number"))
        refusals.append("the token has no numeric exp claim, which STS requires")
        return
    allowance = int(EXPIRY_SKEW.total_seconds())
    passed = current < expiry + allowance
    late = current >= expiry
    note = ""
    if passed and late:
        note = (
            f"expired {current - int(expiry)}s ago, within AWS's {allowance // 60}-minute "
            "clock-skew allowance"
        )
        warnings.append(
            f"the token expired {current - int(expiry)}s ago; STS still accepts it within "
            f"its {allowance // 60}-minute clock-skew allowance, but mint a fresh one"
        )
    compared = {"exp": expiry, "now": current, "skew_seconds": allowance}
    what = f"token: exp + {allowance // 60} min clock skew after now"
    checks.append(Check(what, passed, compared, note))
    if not passed:
        when = datetime.fromtimestamp(expiry, UTC).isoformat().replace("+00:00", "Z")
        refusals.append(
            f"Token expired: current date/time {current} must be before the expiration "
            f"date/time {int(expiry)} (it expired at {when}, longer ago than AWS's "
            f"{allowance // 60}-minute clock-skew allowance; ExpiredTokenException)"
        )
    if not isinstance(claims.get("iat"), int | float):
        warnings.append("the token has no numeric iat claim, which AWS requires")
