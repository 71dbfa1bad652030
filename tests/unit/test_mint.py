"""Minter: the in-process half of issuing that `make bench` measures.

Its tokens are checked by PyJWT and, byte for byte, against the plain encoding of
their claims (orjson's JSON of ``Claims.to_dict``, base64url by the standard library);
the key that signs them against the keyring's lifecycle, with a manual clock.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import orjson
import pytest
from jwt.types import Options

from federation.clock import ManualClock, SystemClock, seconds
from federation.domain.durations import Grant
from federation.domain.subjects import SubjectContext, parse_template
from federation.domain.tokens import Claims
from federation.errors import InvalidRequest, ResourceUnavailable
from federation.issuing.minting import IssuedToken, Minter, Prepared
from federation.keys import Keyring
from federation.settings import Settings

AUDIENCE = "sts.amazonaws.com"
GCP_AUDIENCE = (
    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/o"
)
TEMPLATE = parse_template(["teams", "environment"])
CONTEXT = SubjectContext(
    principal_type="user",
    principal_uid="ada",
    run_id="run-1",
    email="ada@example.com",
    team="platform",
    environment="staging",
    agent_name=None,
    skill_spec=None,
    host=None,
)
FULL = replace(CONTEXT, agent_name="nightly", skill_spec="acme/repo:deploy", host="warp")
NO_TIME_CHECKS: Options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


def make_minter(settings: Settings, keyring: Keyring, clock: Any) -> Minter:
    """The minter as ``TokenIssuer.from_settings`` builds it."""
    return Minter.from_settings(settings, keyring, clock)


@pytest.fixture
def minter(settings: Settings, keyring: Keyring, clock: ManualClock) -> Minter:
    return make_minter(settings, keyring, clock)


def grant(lifetime: int) -> Grant:
    return Grant(seconds=lifetime, requested=lifetime, capped=False)


def verified(minter: Minter, issued: IssuedToken, audience: str = AUDIENCE) -> dict[str, Any]:
    """The claims of ``issued`` once PyJWT has checked it with the key its kid names."""
    header = jwt.get_unverified_header(issued.token)
    assert header == {"typ": "JWT", "alg": issued.alg, "kid": issued.kid}
    public = next(
        key.signer.public_key for key in minter.keyring.store.load() if key.record.kid == issued.kid
    )
    claims: dict[str, Any] = jwt.decode(
        issued.token, public, algorithms=[issued.alg], audience=audience, options=NO_TIME_CHECKS
    )
    return claims


def b64url_reference(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def plain_segments(issued: IssuedToken) -> tuple[str, str]:
    """The header and payload segments as a plain encoder writes them for these claims."""
    header = orjson.dumps({"typ": "JWT", "alg": issued.alg, "kid": issued.kid})
    payload = orjson.dumps(issued.claims.to_dict())
    return b64url_reference(header).decode(), b64url_reference(payload).decode()


def test_mint_signs_the_rendered_subject_with_the_active_key(
    minter: Minter, clock: ManualClock
) -> None:
    first = minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900))
    again = minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900), alg="RS256")
    for minted in (first, again):
        signer, _ = minter.keyring.signer(minted.alg, clock.now())
        assert minted.kid == signer.kid
        claims = verified(minter, minted)
        assert claims["sub"] == "teams:platform/environment:staging"
        assert claims["exp"] - claims["iat"] == 900
        assert claims == minted.claims.to_dict()
    assert first.alg == "ES256"
    assert first.claims.jti != again.claims.jti
    # the kept shape answers for its own context only
    other = minter.mint(replace(CONTEXT, environment="prod"), TEMPLATE, AUDIENCE, grant(900))
    assert other.claims.subject == "teams:platform/environment:prod"


CASES: list[tuple[SubjectContext, tuple[str, ...], dict[str, str] | None]] = [
    (CONTEXT, TEMPLATE, None),
    (FULL, TEMPLATE, None),
    (FULL, parse_template(["principal", "agent_name", "skill_spec", "host"]), None),
    (replace(CONTEXT, email=None, team=None, environment=None), ("principal",), None),
    (FULL, ("principal",), {"team": "platform", "environment": "staging"}),
    (FULL, ("principal",), {}),
    # JSON escapes, non-ASCII, and values whose length moves every 3-byte boundary
    (replace(FULL, agent_name='q"uote\\back\nline\x01', host="hôte-été-☃"), TEMPLATE, None),
    (replace(FULL, principal_uid="a" * 7, skill_spec="x/y:z%"), ("principal",), None),
    (replace(FULL, principal_uid="a" * 8, run_id="r"), ("principal", "run_id"), None),
    (replace(FULL, principal_type="service_account", email=None), ("principal",), None),
]


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
@pytest.mark.parametrize(("context", "template", "tags"), CASES)
def test_tokens_are_the_plain_encoding_byte_for_byte(
    minter: Minter,
    clock: ManualClock,
    alg: str,
    context: SubjectContext,
    template: tuple[str, ...],
    tags: dict[str, str] | None,
) -> None:
    for lifetime in (1, 900, 3600, 43200):
        for step in (0, 1, 1, 86400 * 400):  # the same second again, the next, a year on
            clock.advance(timedelta(seconds=step))
            issued = minter.mint(context, template, AUDIENCE, grant(lifetime), alg=alg, tags=tags)
            header, payload, _ = issued.token.split(".")
            assert (header, payload) == plain_segments(issued)
            assert verified(minter, issued) == issued.claims.to_dict()
            assert issued.claims.aws_tags == tags
            assert issued.claims.expires_at - issued.claims.issued_at == lifetime


def test_audience_as_a_string_and_another_separator(
    settings: Settings, keyring: Keyring, clock: ManualClock
) -> None:
    other = settings.model_copy(update={"audience_format": "string", "subject_separator": "|"})
    minter = make_minter(other, keyring, clock)
    issued = minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900))
    header, payload, _ = issued.token.split(".")
    assert (header, payload) == plain_segments(issued)
    claims = verified(minter, issued)
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == "teams:platform|environment:staging"


def test_times_cross_a_change_in_digits(
    settings: Settings, keyring: Keyring, clock: ManualClock
) -> None:
    """At 10**9 and 10**10 seconds the times gain a digit, which moves the bytes after
    them across the 3-byte groups of base64."""
    for second in (10**9 - 1, 10**9, 10**9 + 1, 10**10 - 1, 10**10):
        at = ManualClock(datetime.fromtimestamp(second + settings.clock_skew, UTC))
        minter = make_minter(settings, keyring, at)
        for lifetime in (1, 999_999_999):
            claims = minter.claims(CONTEXT, TEMPLATE, AUDIENCE, grant(lifetime), None)
            assert claims.issued_at == second
            assert claims.payload() == b64url_reference(orjson.dumps(claims.to_dict()))


def test_claims_are_what_the_constructor_makes(minter: Minter, clock: ManualClock) -> None:
    claims = minter.claims(FULL, TEMPLATE, AUDIENCE, grant(900), {"team": "platform"})
    expected = Claims(
        issuer=minter.issuer,
        subject="teams:platform/environment:staging",
        audience=AUDIENCE,
        issued_at=int(clock.timestamp()) - minter.clock_skew,
        expires_at=int(clock.timestamp()) - minter.clock_skew + 900,
        jti=claims.jti,
        email="ada@example.com",
        team="platform",
        run_id="run-1",
        environment="staging",
        agent_name="nightly",
        skill_spec="acme/repo:deploy",
        host="warp",
        audience_as_array=True,
        aws_tags={"team": "platform"},
    )
    assert claims == expected
    assert repr(claims) == repr(expected)
    assert len(claims.jti) == 24


def test_changed_claims_are_signed_as_changed(minter: Minter) -> None:
    """Claims replaced after minting (a preview edited in a test, say) are encoded from
    their fields, not from the shape they were made from."""
    claims = minter.claims(CONTEXT, TEMPLATE, AUDIENCE, grant(900), None)
    changed = replace(claims, subject="teams:platform/environment:prod", expires_at=1)
    issued = minter.sign(Prepared(changed, "ES256", grant(900)))
    decoded = verified(minter, issued)
    assert decoded["sub"] == "teams:platform/environment:prod"
    assert decoded["exp"] == 1
    assert issued.claims is changed


def test_refusals_are_raised_every_time(minter: Minter) -> None:
    """A subject that cannot be made is refused on every request, never kept."""
    no_agent = replace(CONTEXT, agent_name=None)
    long_uid = replace(CONTEXT, principal_uid="u" * 130)
    for _ in range(3):
        with pytest.raises(InvalidRequest, match="agent_name"):
            minter.mint(no_agent, ("agent_name",), AUDIENCE, grant(900))
        with pytest.raises(InvalidRequest, match="127 bytes"):
            minter.mint(long_uid, ("principal",), GCP_AUDIENCE, grant(900))
    # the same subject for an audience without the GCP limit is fine
    assert minter.mint(long_uid, ("principal",), AUDIENCE, grant(900)).claims.subject


def test_each_context_field_changes_the_claims(minter: Minter) -> None:
    template = parse_template(["principal", "teams", "environment", "agent_name"])
    base = minter.claims(FULL, template, AUDIENCE, grant(900), None)
    for field, value in [
        ("principal_type", "service_account"),
        ("principal_uid", "bob"),
        ("run_id", "run-2"),
        ("email", "bob@example.com"),
        ("team", "infra"),
        ("environment", "prod"),
        ("agent_name", "hourly"),
        ("skill_spec", "acme/other"),
        ("host", "elsewhere"),
    ]:
        changes: dict[str, Any] = {field: value}
        claims = minter.claims(replace(FULL, **changes), template, AUDIENCE, grant(900), None)
        assert claims.to_dict() != {**base.to_dict(), "jti": claims.jti}
        assert claims.payload() == b64url_reference(orjson.dumps(claims.to_dict()))


def test_times_come_from_the_injected_clock(minter: Minter, clock: ManualClock) -> None:
    first = minter.claims(CONTEXT, TEMPLATE, AUDIENCE, grant(900), None)
    assert first.issued_at == int(clock.now().timestamp()) - minter.clock_skew
    clock.advance(timedelta(seconds=61, microseconds=999_999))
    later = minter.claims(CONTEXT, TEMPLATE, AUDIENCE, grant(900), None)
    assert later.issued_at == first.issued_at + 61
    issued = minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900))
    assert issued.issued_at == datetime.fromtimestamp(later.issued_at, UTC)
    assert issued.expires_at == issued.issued_at + timedelta(seconds=900)


class NowOnly:
    """A clock with no ``timestamp``: minting reads ``now()``."""

    def __init__(self, when: datetime) -> None:
        self.when = when

    def now(self) -> datetime:
        return self.when


def test_a_clock_with_now_only_is_read_through_now(
    settings: Settings, keyring: Keyring, clock: ManualClock
) -> None:
    plain = NowOnly(clock.now() + timedelta(seconds=30))
    minter = make_minter(settings, keyring, plain)
    claims = minter.claims(CONTEXT, TEMPLATE, AUDIENCE, grant(900), None)
    assert claims.issued_at == int(plain.when.timestamp()) - settings.clock_skew
    assert seconds(plain)() == plain.when.timestamp()
    assert seconds(clock)() == clock.now().timestamp()
    system = seconds(SystemClock())()
    assert abs(system - datetime.now(UTC).timestamp()) < 5


def test_rotation_switches_keys_at_the_instant_it_takes_effect(
    minter: Minter, clock: ManualClock
) -> None:
    old = minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900)).kid
    t0 = clock.now()
    new = minter.keyring.rotate("ES256")
    lead = new.activates_at - t0
    for moment, expected in [
        (t0 + lead - timedelta(microseconds=1), old),
        (t0 + lead, new.kid),
        (t0 + lead + timedelta(hours=1), new.kid),
    ]:
        clock.set(moment)
        issued = minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900))
        assert issued.kid == expected
        verified(minter, issued)


def test_retired_and_revoked_keys_stop_signing_at_once(minter: Minter) -> None:
    first = minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900)).kid
    minter.keyring.retire(first)
    second = minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900)).kid
    assert second != first
    minter.keyring.revoke(second)
    third = minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900))
    assert third.kid not in {first, second}
    verified(minter, third)


def test_an_algorithm_with_no_active_key_is_refused(minter: Minter) -> None:
    rs = minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900), alg="RS256").kid
    minter.keyring.store.update(rs, revoked_at=minter.clock.now())
    minter.keyring.load()
    with pytest.raises(ResourceUnavailable, match="RS256"):
        minter.mint(CONTEXT, TEMPLATE, AUDIENCE, grant(900), alg="RS256")


@pytest.fixture
def threads() -> Iterator[list[threading.Thread]]:
    started: list[threading.Thread] = []
    yield started
    for thread in started:
        thread.join(timeout=30)


def test_minting_from_many_threads(minter: Minter, threads: list[threading.Thread]) -> None:
    """Threads minting at once, with lifetimes that change the kept encoding of the
    times all the time, each get a token of their own claims and a jti of their own."""
    results: list[IssuedToken] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        context = replace(FULL, run_id=f"run-{index}")
        for count in range(150):
            issued = minter.mint(context, TEMPLATE, AUDIENCE, grant(60 + count % 7 + index))
            with lock:
                results.append(issued)

    for index in range(4):
        thread = threading.Thread(target=work, args=(index,))
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 600
    assert len({issued.claims.jti for issued in results}) == 600
    for issued in results:
        assert issued.token.split(".")[:2] == list(plain_segments(issued))
