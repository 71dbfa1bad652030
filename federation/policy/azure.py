"""Microsoft Entra federated identity credentials: will Entra take this assertion?

Entra matches a federated identity credential exactly: its ``issuer`` equals the token's
``iss`` and its ``subject`` the token's ``sub``, byte for byte and case-sensitively (no
wildcards), and its single audience is in the token's ``aud``. The assertion must be
within its time range: not before ``nbf`` and before ``exp``, with no clock skew (Entra
documents none for federated assertions, so none is assumed). The checks, and the
AADSTS error Entra answers when one fails, follow Microsoft's workload identity
federation documentation.

Microsoft supports only RS256-signed tokens for the exchange; others "may work, but
haven't been tested". The tester does not promise what Microsoft does not, so another
algorithm is a refusal whose reason says exactly that, not a rule of Entra's.

A credential with other than one audience cannot be saved ("Federated identity
credentials must have exactly one audience."): that raises
:class:`~federation.policy.result.InvalidPolicy`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from federation.domain.tokens import ENTRA_AUDIENCE
from federation.errors import InvalidPolicy
from federation.policy.result import Check, Evaluation, allow, deny


class _Check(Protocol):
    def __call__(self, what: str, passed: bool, refusal: str, **compared: Any) -> None: ...


ONE_AUDIENCE = "Federated identity credentials must have exactly one audience."
SUPPORTED_ALGORITHM = "RS256"


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
    audiences = credential.get("audiences")
    if not isinstance(audiences, list) or len(audiences) != 1:
        raise InvalidPolicy(ONE_AUDIENCE, f"the credential's audiences are {audiences!r}")
    warnings = _warnings(credential, claims)
    refusals: list[str] = []

    def check(what: str, passed: bool, refusal: str, **compared: Any) -> None:
        checks.append(Check(what, passed, compared, "" if passed else refusal))
        if not passed:
            refusals.append(refusal)

    issuer, token_issuer = credential.get("issuer"), claims.get("iss")
    check(
        "issuer",
        issuer_matches(issuer, token_issuer),
        "AADSTS700211: no matching federated identity record for the assertion's issuer"
        + _near_miss(issuer, token_issuer, "issuer"),
        credential=issuer,
        token=token_issuer,
    )
    subject, token_subject = credential.get("subject"), claims.get("sub")
    check(
        "subject",
        subject_matches(subject, token_subject),
        "AADSTS700213: no matching federated identity record for the assertion's subject"
        + _near_miss(subject, token_subject, "subject"),
        credential=subject,
        token=token_subject,
    )
    audience = audiences[0]
    token_audiences = _audiences(claims.get("aud"))
    check(
        "audience",
        audience_matches(audience, claims.get("aud")),
        "AADSTS700212: no matching federated identity record for the assertion's audience",
        credential=audiences,
        token=token_audiences,
    )
    if header:
        alg = header.get("alg")
        check(
            "algorithm",
            alg == SUPPORTED_ALGORITHM,
            f"the assertion is signed with {alg}: Microsoft supports only RS256-signed tokens "
            "for workload identity federation, and says other algorithms may work but "
            "haven't been tested, so the tester does not promise Entra accepts it",
            token=alg,
            supported=SUPPORTED_ALGORITHM,
        )
    else:
        checks.append(Check("algorithm", True, {}, "not checked: no token header was given"))
    _check_times(claims, now or datetime.now(UTC), check)
    if refusals:
        return deny(refusals[0], checks, warnings)
    return allow(
        f"the credential matches issuer, subject {token_subject!r} and audience", checks, warnings
    )


def issuer_matches(credential_issuer: object, token_issuer: object) -> bool:
    """Entra's issuer match: the credential's ``issuer`` equals ``iss`` byte for byte."""
    return credential_issuer == token_issuer


def subject_matches(credential_subject: object, token_subject: object) -> bool:
    """Entra's subject match: exact and case-sensitive, no wildcards."""
    return credential_subject == token_subject


def audience_matches(credential_audience: object, token_audience: object) -> bool:
    """Entra's audience match: the credential's one audience is among ``aud`` (a string
    or a list of them)."""
    return credential_audience in _audiences(token_audience)


def _check_times(claims: dict[str, Any], moment: datetime, check: _Check) -> None:
    """Entra's time range: ``nbf <= now < exp``, no skew either side."""
    current = int(moment.timestamp())
    expires, not_before = _seconds(claims.get("exp")), _seconds(claims.get("nbf"))
    check(
        "time range: exp",
        expires is not None and current < expires,
        "AADSTS700024: the client assertion is not within its valid time range (expired)",
        now=current,
        exp=claims.get("exp"),
    )
    if "nbf" not in claims:
        return  # NOTE: nbf is optional; without it only exp bounds the range
    check(
        "time range: nbf",
        not_before is not None and not_before <= current,
        "AADSTS700024: the client assertion is not within its valid time range (not yet "
        f"valid: nbf is {claims['nbf']}, now {current}; Entra documents no clock skew)",
        now=current,
        nbf=claims["nbf"],
    )


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


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
