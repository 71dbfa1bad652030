"""What GCP STS requires of a subject token's JOSE header, before its claims.

The STS reference (``subjectToken``) says of an OIDC JWT's header: ``alg`` must be
``RS256`` or ``ES256``, and ``kid`` is required, the ID of the key that signed it. The
tester checks this when it has the header (a token, or what ``federation decode``
prints); the GCP stand-in verifies tokens with the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.policy.result import Check

ALGORITHMS = frozenset({"RS256", "ES256"})
REQUIRES_KID = True


def header_problem(header: Mapping[str, Any], *, signed: bool = True) -> str | None:
    """Why GCP STS would refuse a token with this header, or None. Unless ``signed``,
    the header is a preview's, whose ``kid`` signing has yet to pick."""
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        return f"the token is signed with {alg}; GCP STS takes only RS256 or ES256"
    kid = header.get("kid")
    if signed and REQUIRES_KID and (not isinstance(kid, str) or not kid):
        return "the token header has no kid, which GCP STS requires"
    return None


def header_check(header: Mapping[str, Any] | None, *, signed: bool = True) -> Check:
    """The header check, or a passing note that no header was given to check."""
    if not header:
        return Check("token header", True, {}, "not checked: no token header was given")
    problem = header_problem(header, signed=signed)
    compared = {"alg": header.get("alg"), "kid": header.get("kid"), "accepted": sorted(ALGORITHMS)}
    note = problem or ("" if signed else "alg checked; the kid is picked when the token is signed")
    return Check("token header", problem is None, compared, note)
