"""Microsoft Entra federated identity credentials: will Entra take this assertion?

Entra matches a federated identity credential exactly: its ``issuer`` equals the token's
``iss`` and its ``subject`` the token's ``sub``, byte for byte and case-sensitively (no
wildcards), and its single audience is in the token's ``aud``. Only RS256 is accepted,
and the assertion must be within its time range. The checks, and the AADSTS error Entra
answers when one fails, follow Microsoft's workload identity federation documentation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from federation.policy.result import Check, Evaluation, allow, deny
from federation.tokens import ENTRA_AUDIENCE


def evaluate(
    credential: dict[str, Any],
    claims: dict[str, Any],
    *,
    header: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Evaluation:
    """Whether Entra would accept a token with ``claims`` (and ``header``, when known)
    as a client assertion for the app holding ``credential`` (as ``az ad app
    federated-credential show`` prints it: ``issuer``, ``subject``, ``audiences``)."""
    checks: list[Check] = []
    warnings = _warnings(credential, claims)
    refusals: list[str] = []

    def check(what: str, passed: bool, refusal: str, **compared: Any) -> None:
        checks.append(Check(what, passed, compared, "" if passed else refusal))
        if not passed:
            refusals.append(refusal)

    issuer, token_issuer = credential.get("issuer"), claims.get("iss")
    check(
        "issuer",
        issuer == token_issuer,
        "AADSTS700211: no matching federated identity record for the assertion's issuer"
        + _near_miss(issuer, token_issuer, "issuer"),
        credential=issuer,
        token=token_issuer,
    )
    subject, token_subject = credential.get("subject"), claims.get("sub")
    check(
        "subject",
        subject == token_subject,
        "AADSTS700213: no matching federated identity record for the assertion's subject"
        + _near_miss(subject, token_subject, "subject"),
        credential=subject,
        token=token_subject,
    )
    audiences = credential.get("audiences")
    audience = audiences[0] if isinstance(audiences, list) and len(audiences) == 1 else None
    token_audiences = _audiences(claims.get("aud"))
    check(
        "audience",
        audience is not None and audience in token_audiences,
        "AADSTS700212: no matching federated identity record for the assertion's audience"
        if audience is not None
        else "a federated identity credential must have exactly one audience",
        credential=audiences,
        token=token_audiences,
    )
    if header:
        check(
            "algorithm",
            header.get("alg") == "RS256",
            "Entra accepts only assertions signed with RS256",
            token=header.get("alg"),
            accepted="RS256",
        )
    else:
        checks.append(Check("algorithm", True, {}, "not checked: no token header was given"))
    moment = now or datetime.now(UTC)
    expires = claims.get("exp")
    check(
        "time range",
        isinstance(expires, int) and moment.timestamp() < expires,
        "AADSTS700024: the client assertion is not within its valid time range (expired)",
        now=int(moment.timestamp()),
        exp=expires,
    )
    if refusals:
        return deny(refusals[0], checks, warnings)
    return allow(
        f"the credential matches issuer, subject {token_subject!r} and audience", checks, warnings
    )


def _audiences(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _near_miss(expected: Any, actual: Any, what: str) -> str:
    """Why two values that look alike still differ: Entra compares bytes."""
    if not isinstance(expected, str) or not isinstance(actual, str):
        return f" (the token has no {what})" if actual is None else ""
    if expected.rstrip("/") == actual.rstrip("/"):
        return " (a trailing slash differs: Entra compares byte for byte)"
    if expected.strip() == actual.strip():
        return " (whitespace differs)"
    if expected.lower() == actual.lower():
        return " (only letter case differs: the match is case-sensitive)"
    return f": the credential has {expected!r}, the token {actual!r}"


def _warnings(credential: dict[str, Any], claims: dict[str, Any]) -> list[str]:
    warnings = []
    audiences = credential.get("audiences")
    if isinstance(audiences, list) and audiences != [ENTRA_AUDIENCE]:
        warnings.append(
            f"the credential's audience is {audiences}; Entra's recommended (and our "
            f"tokens') audience is {ENTRA_AUDIENCE}"
        )
    if "claimsMatchingExpression" in credential:
        warnings.append(
            "flexible federated identity credentials (claimsMatchingExpression) are not "
            "evaluated here; only issuer, subject and audience are"
        )
    subject = credential.get("subject")
    if isinstance(subject, str) and any(mark in subject for mark in "*?"):
        warnings.append(
            "the credential's subject holds * or ?: Entra matches subjects exactly, with no "
            "wildcards, so only a token with that literal subject matches"
        )
    if isinstance(claims.get("sub"), str) and "run_id:" in claims["sub"]:
        warnings.append(
            "the subject names one run (run_id): a federated identity credential matches one "
            "exact subject, so every run would need a credential of its own (at most 20 per app)"
        )
    return warnings
