"""API-key format and hashing, scopes, and authentication against a real store."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from federation.clock import ManualClock
from federation.errors import AuthenticationRequired, InvalidRequest, NotAuthorized
from federation.registry import principals as accounts
from federation.registry.auth import (
    LAST_USED_RESOLUTION,
    Caller,
    Scope,
    authenticate,
    mask,
    new_api_key,
    new_workload_token,
    parse_scopes,
    secret_hash,
    secret_matches,
)
from federation.store import Store
from federation.store.models import ApiKey

B64URL = "[A-Za-z0-9_-]"


def decoded_bits(text: str) -> int:
    return len(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))) * 8


# ---- formats --------------------------------------------------------------------------


def test_api_key_format() -> None:
    key = new_api_key()
    assert re.fullmatch(rf"wk-{B64URL}{{43}}", key)
    assert decoded_bits(key.removeprefix("wk-")) >= 256


def test_api_keys_are_unique() -> None:
    keys = {new_api_key() for _ in range(1000)}
    assert len(keys) == 1000


def test_workload_token_format() -> None:
    token = new_workload_token()
    assert re.fullmatch(rf"wlt-{B64URL}{{43}}", token)
    assert decoded_bits(token.removeprefix("wlt-")) >= 256
    assert len({new_workload_token() for _ in range(1000)}) == 1000


def test_secret_hash_is_sha256_hex() -> None:
    # FIPS 180-2 test vector for "abc".
    assert secret_hash("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    key = new_api_key()
    assert re.fullmatch("[0-9a-f]{64}", secret_hash(key))
    assert key not in secret_hash(key)


def test_secret_matches() -> None:
    key = new_api_key()
    stored = secret_hash(key)
    assert secret_matches(key, stored)
    assert not secret_matches(new_api_key(), stored)
    assert not secret_matches(key[:-1], stored)
    assert not secret_matches(key, stored.upper())
    assert not secret_matches(key, "")


def test_mask_shows_only_the_last_four() -> None:
    assert mask("abcd") == "wk-**abcd"


# ---- scopes ---------------------------------------------------------------------------


def test_parse_scopes_keeps_order_and_drops_repeats() -> None:
    assert parse_scopes(["runs:write", "federate", "runs:write"]) == ["runs:write", "federate"]
    assert parse_scopes(iter(["admin"])) == ["admin"]


def test_parse_scopes_refuses_none() -> None:
    with pytest.raises(InvalidRequest, match="at least one scope"):
        parse_scopes([])


def test_parse_scopes_refuses_unknown_naming_the_valid_ones() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_scopes(["federate", "root"])
    detail = raised.value.detail
    assert detail is not None
    assert "'root'" in detail
    for scope in ("federate", "runs:write", "admin"):
        assert scope in detail


def test_parse_scopes_truncates_a_long_unknown_scope() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_scopes(["x" * 1000])
    assert raised.value.detail is not None
    assert "x" * 33 not in raised.value.detail


def caller(*scopes: str) -> Caller:
    return Caller(
        key_id="ak_1",
        key_name="ci",
        key_type="personal",
        key_last4="abcd",
        key_expires_at=None,
        scopes=frozenset(scopes),
        principal_uid="u1",
        principal_type="user",
        email=None,
        display_name=None,
        teams=(),
    )


def test_require_passes_with_an_accepted_scope() -> None:
    caller("federate").require(Scope.FEDERATE)
    caller("runs:write").require(Scope.FEDERATE, Scope.RUNS_WRITE)


def test_admin_passes_every_requirement() -> None:
    admin = caller("admin")
    assert admin.is_admin
    admin.require(Scope.FEDERATE)
    admin.require(Scope.RUNS_WRITE)
    admin.require()


def test_require_refuses_naming_the_scopes_that_would_do() -> None:
    with pytest.raises(NotAuthorized) as raised:
        caller("federate").require(Scope.RUNS_WRITE)
    assert raised.value.status == 403
    assert raised.value.detail is not None
    assert "'runs:write'" in raised.value.detail
    assert "'admin'" in raised.value.detail
    assert not caller("federate", "runs:write").is_admin


def test_require_nothing_but_admin() -> None:
    with pytest.raises(NotAuthorized):
        caller("federate", "runs:write").require()


# ---- authenticate ---------------------------------------------------------------------


def make_key(
    store: Store, clock: ManualClock, *, expires_in: str = "30d", uid: str = "u1"
) -> accounts.CreatedKey:
    with store.session() as session:
        accounts.create_principal(
            session,
            type="user",
            uid=uid,
            email="ada@example.com",
            display_name="Ada",
            teams=["t1", "t2"],
            now=clock.now(),
        )
        return accounts.create_api_key(
            session,
            None,
            name="ci",
            type="personal",
            principal_uid=uid,
            scopes=["federate", "runs:write"],
            expires_in=expires_in,
            now=clock.now(),
        )


def login(store: Store, presented: str | None, clock: ManualClock) -> Caller:
    with store.session() as session:
        return authenticate(session, presented, clock.now())


def last_used(store: Store, key_id: str) -> object:
    with store.session() as session:
        return session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))


def refused(store: Store, presented: str | None, clock: ManualClock) -> AuthenticationRequired:
    with pytest.raises(AuthenticationRequired) as raised:
        login(store, presented, clock)
    return raised.value


def test_authenticate_returns_the_caller(store: Store, clock: ManualClock) -> None:
    created = make_key(store, clock)
    found = login(store, created.raw, clock)
    assert found.key_id == created.row.id
    assert found.key_name == "ci"
    assert found.key_type == "personal"
    assert found.key_last4 == created.raw[-4:]
    assert found.key_expires_at == clock.now() + timedelta(days=30)
    assert found.scopes == frozenset({"federate", "runs:write"})
    assert found.principal_uid == "u1"
    assert found.principal_type == "user"
    assert found.email == "ada@example.com"
    assert found.display_name == "Ada"
    assert found.teams == ("t1", "t2")
    assert not found.is_admin


def test_only_the_hash_is_stored(store: Store, clock: ManualClock) -> None:
    created = make_key(store, clock)
    with store.session() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.id == created.row.id))
    assert row is not None
    assert row.key_hash == secret_hash(created.raw)
    assert created.raw not in {str(value) for value in vars(row).values()}


def same_refusal(errors: list[AuthenticationRequired]) -> None:
    first = errors[0]
    for error in errors:
        assert type(error) is AuthenticationRequired
        assert error.detail is None
        assert error.status == 401
        assert str(error) == first.title
        assert error.problem(instance="/x", trace_id="t") == first.problem(
            instance="/x", trace_id="t"
        )


def test_unknown_malformed_deleted_and_expired_keys_get_one_answer(
    store: Store, clock: ManualClock
) -> None:
    live = make_key(store, clock, uid="u1")
    expiring = make_key(store, clock, expires_in="1d", uid="u2")
    deleted = make_key(store, clock, uid="u3")
    with store.session() as session:
        owner = authenticate(session, deleted.raw, clock.now())
        accounts.delete_api_key(session, owner, deleted.row.id, clock.now())
    clock.advance(timedelta(days=2))

    errors = [
        refused(store, None, clock),
        refused(store, "", clock),
        refused(store, "wk-", clock),
        refused(store, "wk-short", clock),
        refused(store, live.raw + "x", clock),  # too long
        refused(store, live.raw[:-1], clock),  # too short
        refused(store, "xx-" + live.raw[3:], clock),  # wrong prefix, right length
        refused(store, f"Bearer {live.raw}", clock),
        refused(store, new_api_key(), clock),  # well-formed, unknown
        refused(store, live.raw[:-1] + ("A" if live.raw[-1] != "A" else "B"), clock),
        refused(store, expiring.raw, clock),
        refused(store, deleted.raw, clock),
    ]
    same_refusal(errors)
    assert login(store, live.raw, clock).principal_uid == "u1"


def test_expiry_boundary_follows_the_injected_clock(store: Store, clock: ManualClock) -> None:
    created = make_key(store, clock, expires_in="1d")
    expires = clock.now() + timedelta(days=1)
    clock.set(expires - timedelta(microseconds=1))
    assert login(store, created.raw, clock).key_id == created.row.id
    clock.set(expires)
    refused(store, created.raw, clock)
    clock.set(expires + timedelta(seconds=1))
    refused(store, created.raw, clock)


def test_never_expiring_key_stays_valid(store: Store, clock: ManualClock) -> None:
    created = make_key(store, clock, expires_in="never")
    clock.advance(timedelta(days=3650))
    found = login(store, created.raw, clock)
    assert found.key_expires_at is None


def test_last_used_is_written_on_use(store: Store, clock: ManualClock) -> None:
    created = make_key(store, clock)
    assert last_used(store, created.row.id) is None
    clock.advance(timedelta(minutes=5))
    login(store, created.raw, clock)
    assert last_used(store, created.row.id) == clock.now()


def test_last_used_is_not_rewritten_within_the_resolution(store: Store, clock: ManualClock) -> None:
    created = make_key(store, clock)
    first = clock.now()
    login(store, created.raw, clock)
    clock.advance(LAST_USED_RESOLUTION - timedelta(seconds=1))
    login(store, created.raw, clock)
    assert last_used(store, created.row.id) == first

    clock.set(first + LAST_USED_RESOLUTION)
    login(store, created.raw, clock)
    assert last_used(store, created.row.id) == first + LAST_USED_RESOLUTION


def test_failed_authentication_does_not_touch_last_used(store: Store, clock: ManualClock) -> None:
    created = make_key(store, clock, expires_in="1d")
    clock.advance(timedelta(days=1))
    refused(store, created.raw, clock)
    assert last_used(store, created.row.id) is None
