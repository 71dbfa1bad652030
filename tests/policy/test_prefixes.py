"""Prefix traps: subject patterns that stop inside a component, for AWS and GCP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from federation.policy import gcp
from federation.policy.prefixes import glob_trap, open_ended


@pytest.mark.parametrize(
    ("pattern", "trap"),
    [
        ("teams:t1*", "teams:t1"),
        ("teams:t1/*", None),
        ("teams:*", None),
        ("*", None),
        ("teams:t1/environment:pr*", "teams:t1/environment:pr"),
        ("teams:t1*/environment:prod", "teams:t1"),
        ("skill_spec:acme/*", None),  # a '/' in a value is a path boundary
        ("user:u?", None),  # '?' is one character, no open end
        ("scoped_principal:t1/user:u1", None),
        ("teams:t1/**", None),
    ],
)
def test_a_star_after_a_boundary_is_safe_and_any_other_is_a_trap(
    pattern: str, trap: str | None
) -> None:
    assert glob_trap(pattern) == trap


@pytest.mark.parametrize(
    ("prefix", "open"), [("teams:t1", True), ("teams:t1/", False), ("teams:", False), ("", False)]
)
def test_open_ended_prefixes(prefix: str, open: bool) -> None:
    assert open_ended(prefix) is open


NAME = "projects/123456789012/locations/global/workloadIdentityPools/agents/providers/federation"
CLAIMS = {
    "iss": "https://issuer.example.com",
    "sub": "teams:t1/environment:prod",
    "aud": [f"//iam.googleapis.com/{NAME}"],
    "iat": 1795866900,
    "exp": 1795870500,
    "teams": ["t1"],
}


@pytest.mark.parametrize(
    ("condition", "warned"),
    [
        ("assertion.sub.startsWith('teams:t1')", True),
        ('google.subject.startsWith("teams:t1")', True),
        ("assertion.sub.startsWith('teams:t1/')", False),
        ("!assertion.sub.startsWith('teams:t1') || true", False),  # negated: over-excludes
        ("assertion.sub.endsWith('prod') && 't1' in assertion.teams", False),
    ],
)
def test_gcp_warns_on_a_startswith_that_stops_inside_a_component(
    condition: str, warned: bool
) -> None:
    provider = {
        "name": NAME,
        "oidc": {"issuerUri": "https://issuer.example.com"},
        "attributeMapping": {"google.subject": "assertion.sub"},
        "attributeCondition": condition,
    }
    found = gcp.evaluate(provider, CLAIMS, now=datetime(2026, 11, 28, 12, tzinfo=UTC))
    assert found.allowed
    assert any("stops inside a subject component" in w for w in found.warnings) is warned
