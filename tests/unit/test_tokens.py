"""Claims in the Oz form, audience checks, and token ids."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest

from federation.errors import InvalidRequest
from federation.tokens import (
    CLAIMS_SUPPORTED,
    MAX_AUDIENCE_LENGTH,
    Claims,
    check_audience,
    new_jti,
)

ISSUED = 1_795_867_200  # 2026-11-28T12:00:00Z

CLAIMS = Claims(
    issuer="http://127.0.0.1:8080",
    subject="teams:t1/environment:e1",
    audience="sts.amazonaws.com",
    issued_at=ISSUED,
    expires_at=ISSUED + 900,
    jti="j-1",
    email="ada@example.com",
    team="t1",
    run_id="r1",
    environment="e1",
    agent_name="nightly",
    skill_spec="acme/repo%3Adeploy",
    host="warp",
)
MINIMAL = replace(
    CLAIMS,
    email=None,
    team=None,
    environment=None,
    agent_name=None,
    skill_spec=None,
    host=None,
)


def test_full_claims() -> None:
    assert CLAIMS.to_dict() == {
        "iss": "http://127.0.0.1:8080",
        "sub": "teams:t1/environment:e1",
        "aud": ["sts.amazonaws.com"],
        "iat": ISSUED,
        "nbf": ISSUED,
        "exp": ISSUED + 900,
        "jti": "j-1",
        "email": "ada@example.com",
        "teams": ["t1"],
        "run_id": "r1",
        "environment": "e1",
        "agent_name": "nightly",
        "skill_spec": "acme/repo%3Adeploy",
        "host": "warp",
    }


def test_audience_is_an_array_by_default() -> None:
    assert CLAIMS.to_dict()["aud"] == ["sts.amazonaws.com"]
    assert CLAIMS.aud == ["sts.amazonaws.com"]


def test_audience_may_be_a_plain_string() -> None:
    claims = replace(CLAIMS, audience_as_array=False)
    assert claims.to_dict()["aud"] == "sts.amazonaws.com"


def test_not_before_is_issued_at_and_lifetime_is_exp_minus_iat() -> None:
    claims = replace(CLAIMS, issued_at=ISSUED + 17, expires_at=ISSUED + 17 + 3600).to_dict()
    assert claims["nbf"] == claims["iat"] == ISSUED + 17
    assert claims["exp"] - claims["iat"] == 3600
    for name in ("iat", "nbf", "exp"):
        assert type(claims[name]) is int


def test_optional_claims_are_omitted_when_absent() -> None:
    claims = MINIMAL.to_dict()
    assert set(claims) == {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "run_id"}
    assert None not in claims.values()


@pytest.mark.parametrize(
    ("field", "claim", "value"),
    [
        ("email", "email", "ada@example.com"),
        ("environment", "environment", "e1"),
        ("agent_name", "agent_name", "nightly"),
        ("skill_spec", "skill_spec", "acme/repo"),
        ("host", "host", "worker-3"),
    ],
)
def test_each_optional_claim_appears_alone(field: str, claim: str, value: str) -> None:
    changes: dict[str, Any] = {field: value}
    claims = replace(MINIMAL, **changes).to_dict()
    assert claims[claim] == value
    assert set(claims) - {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "run_id"} == {claim}


def test_team_is_a_one_item_teams_list() -> None:
    claims = replace(MINIMAL, team="t7").to_dict()
    assert claims["teams"] == ["t7"]
    assert "team" not in claims


def test_every_emitted_claim_is_advertised() -> None:
    assert set(CLAIMS.to_dict()) <= set(CLAIMS_SUPPORTED)


@pytest.mark.parametrize(
    "audience",
    [
        "sts.amazonaws.com",
        "api://AzureADTokenExchange",
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/o",
        "a",
        "x" * MAX_AUDIENCE_LENGTH,
    ],
)
def test_audience_accepted(audience: str) -> None:
    assert check_audience(audience) == audience


@pytest.mark.parametrize(
    "audience",
    [
        "",
        "x" * (MAX_AUDIENCE_LENGTH + 1),
        "sts.amazonaws.com ",
        " sts.amazonaws.com",
        "sts amazonaws",
        "sts.amazonaws.com\n",
        "a\tb",
        "a\x00b",
        "a\x1bb",
        "a\u200bb",  # zero-width space: not printable
    ],
)
def test_audience_refused(audience: str) -> None:
    with pytest.raises(InvalidRequest):
        check_audience(audience)


def test_jti_has_at_least_128_random_bits() -> None:
    jti = new_jti()
    raw = base64.urlsafe_b64decode(jti + "=" * (-len(jti) % 4))
    assert len(raw) * 8 >= 128
    assert set(jti) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_jti_is_unique() -> None:
    jtis = {new_jti() for _ in range(2000)}
    assert len(jtis) == 2000
