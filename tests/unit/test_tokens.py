"""Claims in the Oz form, their payload encoded whole or from a shape, audience checks,
and token ids."""

from __future__ import annotations

import base64
import dataclasses
import os
import string
from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.domain import tokens
from federation.domain.tokens import (
    CLAIMS_SUPPORTED,
    MAX_AUDIENCE_LENGTH,
    Claims,
    ClaimsShape,
    check_audience,
    new_jti,
)
from federation.errors import InvalidRequest

JTI_ALPHABET = string.ascii_letters + string.digits + "-_"

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
    assert set(jti) <= set(JTI_ALPHABET)


def test_jti_is_unique() -> None:
    jtis = {new_jti() for _ in range(2000)}
    assert len(jtis) == 2000


def test_jti_batches_never_repeat_a_value() -> None:
    jtis = [new_jti() for _ in range(3 * 256 + 7)]  # across several refills
    assert len(set(jtis)) == len(jtis)
    assert {len(jti) for jti in jtis} == {24}


def test_a_forked_child_draws_fresh_jtis() -> None:
    new_jti()  # a batch is held now
    pending = set(tokens._jtis)
    assert pending
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first jti, then out without running anything else
        os.close(reader)
        os.write(writer, new_jti().encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    assert len(child) == 24
    assert child not in pending


# ---- the JSON and base64url payload ------------------------------------------------


def b64url_reference(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def test_to_json_is_to_dict_in_compact_json() -> None:
    for claims in (CLAIMS, MINIMAL, replace(CLAIMS, aws_tags={"team": "t1"})):
        assert claims.to_json() == orjson.dumps(claims.to_dict())
        assert claims.payload() == b64url_reference(orjson.dumps(claims.to_dict()))


def test_claims_from_a_shape_equal_the_claims_of_the_constructor() -> None:
    shape = ClaimsShape(CLAIMS)
    made = shape.claims(ISSUED + 7, ISSUED + 907, "j-2")
    expected = replace(CLAIMS, issued_at=ISSUED + 7, expires_at=ISSUED + 907, jti="j-2")
    assert made == expected
    assert dataclasses.asdict(made) == dataclasses.asdict(expected)  # every field set
    assert repr(made) == repr(expected)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.jti = "other"  # type: ignore[misc]


def test_replaced_claims_are_encoded_from_their_own_fields() -> None:
    made = ClaimsShape(CLAIMS).claims(ISSUED, ISSUED + 900, "j-2")
    changed = replace(made, subject="teams:t1/environment:prod")
    decoded = orjson.loads(base64.urlsafe_b64decode(changed.payload() + b"=="))
    assert decoded["sub"] == "teams:t1/environment:prod"
    assert changed.payload() == b64url_reference(changed.to_json())


OPTIONAL = st.none() | st.text(max_size=40)
TAGS = st.none() | st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=3)
SECONDS = st.integers(min_value=-(10**12), max_value=10**12)
JTI = st.text(alphabet=JTI_ALPHABET, min_size=0, max_size=40)


@st.composite
def base_claims(draw: st.DrawFn) -> Claims:
    return Claims(
        issuer=draw(st.text(max_size=60)),
        subject=draw(st.text(max_size=80)),
        audience=draw(st.text(max_size=60)),
        issued_at=0,
        expires_at=0,
        jti="",
        email=draw(OPTIONAL),
        team=draw(OPTIONAL),
        run_id=draw(st.text(max_size=40)),
        environment=draw(OPTIONAL),
        agent_name=draw(OPTIONAL),
        skill_spec=draw(OPTIONAL),
        host=draw(OPTIONAL),
        audience_as_array=draw(st.booleans()),
        aws_tags=draw(TAGS),
    )


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    base=base_claims(),
    tokens_of_it=st.lists(st.tuples(SECONDS, SECONDS, JTI), min_size=1, max_size=4),
)
def test_a_shape_encodes_exactly_the_json_of_to_dict(
    base: Claims, tokens_of_it: list[tuple[int, int, str]]
) -> None:
    """Whatever the values (quotes, backslashes, control characters, any Unicode) and
    the times (a digit more or less moves every boundary), the payload is the base64url
    of orjson's JSON of to_dict, byte for byte; also for a second token of the same
    times (their encoding is kept), in shapes whose fixed part ends on each of the
    three byte boundaries."""
    shapes = [ClaimsShape(replace(base, issuer=base.issuer + "x" * extra)) for extra in range(3)]
    for issued_at, expires_at, jti in tokens_of_it:
        for shape in shapes:
            for this_jti in (jti, jti[::-1]):
                claims = shape.claims(issued_at, expires_at, this_jti)
                expected = orjson.dumps(replace(claims).to_dict())
                assert claims.payload() == b64url_reference(expected)
