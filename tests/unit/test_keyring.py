"""Key lifecycle over time, and the keyring: which key signs, which are published."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from federation.clock import ManualClock
from federation.errors import InvalidRequest, ResourceUnavailable
from federation.keys import FileKeyStore, KeyRecord, Keyring, KeyState
from federation.keys.lifecycle import statuses

WINDOW = timedelta(hours=4)
LEAD = timedelta(hours=1)
MICRO = timedelta(microseconds=1)


# ---- lifecycle ------------------------------------------------------------------------


def state_of(
    kid: str, records: list[KeyRecord], now: datetime, window: timedelta = WINDOW
) -> KeyState:
    found = {status.record.kid: status.state for status in statuses(records, now, window)}
    return found[kid]


def test_key_moves_next_active_retired_removed(clock: ManualClock) -> None:
    t0 = clock.now()
    old = KeyRecord(kid="old", alg="ES256", created_at=t0, activates_at=t0)
    new = KeyRecord(kid="new", alg="ES256", created_at=t0, activates_at=t0 + LEAD)
    keys = [old, new]

    assert state_of("old", keys, t0 - MICRO) is KeyState.NEXT
    assert state_of("old", keys, t0) is KeyState.ACTIVE
    assert state_of("new", keys, t0) is KeyState.NEXT
    assert state_of("old", keys, t0 + LEAD - MICRO) is KeyState.ACTIVE
    assert state_of("new", keys, t0 + LEAD - MICRO) is KeyState.NEXT
    assert state_of("old", keys, t0 + LEAD) is KeyState.RETIRED
    assert state_of("new", keys, t0 + LEAD) is KeyState.ACTIVE
    assert state_of("old", keys, t0 + LEAD + WINDOW - MICRO) is KeyState.RETIRED
    assert state_of("old", keys, t0 + LEAD + WINDOW) is KeyState.REMOVED
    assert state_of("new", keys, t0 + LEAD + WINDOW * 10) is KeyState.ACTIVE


def test_status_times_and_order(clock: ManualClock) -> None:
    t0 = clock.now()
    old = KeyRecord(kid="old", alg="ES256", created_at=t0, activates_at=t0)
    new = KeyRecord(kid="new", alg="ES256", created_at=t0, activates_at=t0 + LEAD)
    result = statuses([old, new], t0 + LEAD, WINDOW)
    assert [status.record.kid for status in result] == ["new", "old"]  # newest first
    assert result[1].retires_at == t0 + LEAD
    assert result[1].removed_at == t0 + LEAD + WINDOW
    assert result[0].retires_at is None
    assert result[0].removed_at is None


def test_only_a_newer_key_of_the_same_algorithm_supersedes(clock: ManualClock) -> None:
    t0 = clock.now()
    es = KeyRecord(kid="es", alg="ES256", created_at=t0, activates_at=t0)
    rs = KeyRecord(kid="rs", alg="RS256", created_at=t0, activates_at=t0 + LEAD)
    older = KeyRecord(kid="older", alg="ES256", created_at=t0 - LEAD, activates_at=t0 - LEAD)
    keys = [es, rs, older]
    later = t0 + LEAD * 2
    assert state_of("es", keys, later) is KeyState.ACTIVE  # RS256 does not retire it
    assert state_of("rs", keys, later) is KeyState.ACTIVE
    assert state_of("older", keys, later) is KeyState.RETIRED  # superseded by `es` at t0


def test_explicit_retirement(clock: ManualClock) -> None:
    t0 = clock.now()
    key = KeyRecord(kid="k", alg="ES256", created_at=t0, activates_at=t0, retired_at=t0 + LEAD)
    assert state_of("k", [key], t0 + LEAD - MICRO) is KeyState.ACTIVE
    assert state_of("k", [key], t0 + LEAD) is KeyState.RETIRED
    assert state_of("k", [key], t0 + LEAD + WINDOW) is KeyState.REMOVED


def test_revocation_removes_at_once(clock: ManualClock) -> None:
    t0 = clock.now()
    key = KeyRecord(kid="k", alg="ES256", created_at=t0, activates_at=t0, revoked_at=t0 + LEAD)
    assert state_of("k", [key], t0 + LEAD - MICRO) is KeyState.ACTIVE
    assert state_of("k", [key], t0 + LEAD) is KeyState.REMOVED
    # A retired key that is revoked disappears before its window ends.
    old = KeyRecord(
        kid="old", alg="ES256", created_at=t0, activates_at=t0, revoked_at=t0 + 2 * LEAD
    )
    new = KeyRecord(kid="new", alg="ES256", created_at=t0, activates_at=t0 + LEAD)
    assert state_of("old", [old, new], t0 + LEAD) is KeyState.RETIRED
    assert state_of("old", [old, new], t0 + 2 * LEAD) is KeyState.REMOVED


# ---- keyring --------------------------------------------------------------------------


def make_keyring(directory: Path, clock: ManualClock, refresh_interval: float = 0.0) -> Keyring:
    return Keyring(
        FileKeyStore(directory),
        clock,
        verification_window=WINDOW,
        lead_time=LEAD,
        refresh_interval=refresh_interval,
    )


def published(keyring: Keyring) -> dict[str, str]:
    """kid -> alg of every key in the JWKS."""
    keys = json.loads(keyring.jwks().body)["keys"]
    return {key["kid"]: key["alg"] for key in keys}


def signing_kid(keyring: Keyring, alg: str) -> str:
    signer, header = keyring.signer(alg)
    assert json.loads(base64.urlsafe_b64decode(header + b"=" * (-len(header) % 4))) == {
        "typ": "JWT",
        "alg": alg,
        "kid": signer.kid,
    }
    return signer.kid


def test_ensure_creates_one_key_per_algorithm_once(tmp_path: Path, clock: ManualClock) -> None:
    keyring = make_keyring(tmp_path / "keys", clock)
    created = keyring.ensure()
    assert sorted(record.alg for record in created) == ["ES256", "RS256"]
    assert all(record.activates_at == clock.now() for record in created)
    es, rs = signing_kid(keyring, "ES256"), signing_kid(keyring, "RS256")
    assert published(keyring) == {es: "ES256", rs: "RS256"}

    clock.advance(timedelta(days=1))
    assert keyring.ensure() == []
    assert make_keyring(tmp_path / "keys", clock).ensure() == []
    assert len(FileKeyStore(tmp_path / "keys").load()) == 2
    assert signing_kid(keyring, "ES256") == es


def test_empty_keyring_has_no_signer(tmp_path: Path, clock: ManualClock) -> None:
    keyring = make_keyring(tmp_path / "keys", clock)
    keyring.load()
    with pytest.raises(ResourceUnavailable, match="ES256"):
        keyring.signer("ES256")
    assert published(keyring) == {}


def test_first_key_of_an_empty_keyring_signs_at_once(tmp_path: Path, clock: ManualClock) -> None:
    keyring = make_keyring(tmp_path / "keys", clock)
    record = keyring.rotate("ES256")
    assert record.activates_at == clock.now()
    assert signing_kid(keyring, "ES256") == record.kid


def test_rotation_publishes_first_then_signs_then_retires(
    tmp_path: Path, clock: ManualClock
) -> None:
    keyring = make_keyring(tmp_path / "keys", clock)
    keyring.ensure()
    old = signing_kid(keyring, "ES256")
    rs = signing_kid(keyring, "RS256")
    etag_before = keyring.jwks().etag
    t0 = clock.now()

    new = keyring.rotate("ES256")
    assert new.activates_at == t0 + LEAD
    assert new.kid in published(keyring)  # in the JWKS at once...
    assert signing_kid(keyring, "ES256") == old  # ...but not signing yet
    etag_published = keyring.jwks().etag
    assert etag_published != etag_before

    clock.set(t0 + LEAD - MICRO)
    assert signing_kid(keyring, "ES256") == old
    assert keyring.jwks().etag == etag_published  # nothing published changed

    clock.set(t0 + LEAD)
    assert signing_kid(keyring, "ES256") == new.kid
    assert signing_kid(keyring, "RS256") == rs  # the other algorithm is untouched
    assert set(published(keyring)) == {old, new.kid, rs}  # old: retired, still verifies
    states = {status.record.kid: status.state for status in keyring.statuses()}
    assert states == {old: KeyState.RETIRED, new.kid: KeyState.ACTIVE, rs: KeyState.ACTIVE}
    assert keyring.jwks().etag == etag_published

    clock.set(t0 + LEAD + WINDOW - MICRO)
    assert old in published(keyring)

    clock.set(t0 + LEAD + WINDOW)
    assert set(published(keyring)) == {new.kid, rs}
    assert keyring.jwks().etag not in {etag_before, etag_published}


def test_jwks_holds_public_members_only(tmp_path: Path, clock: ManualClock) -> None:
    keyring = make_keyring(tmp_path / "keys", clock)
    keyring.ensure()
    allowed = {"kty", "alg", "use", "kid", "n", "e", "x", "y", "crv"}
    for key in json.loads(keyring.jwks().body)["keys"]:
        assert set(key) <= allowed
    assert keyring.jwks().etag.startswith('"')
    assert keyring.jwks().etag.endswith('"')


def test_rotate_refuses_unknown_algorithms(tmp_path: Path, clock: ManualClock) -> None:
    keyring = make_keyring(tmp_path / "keys", clock)
    with pytest.raises(InvalidRequest, match="HS256"):
        keyring.rotate("HS256")
    assert not (tmp_path / "keys" / "keyring.json").exists()


def test_another_keyring_on_the_directory_sees_a_rotation(
    tmp_path: Path, clock: ManualClock
) -> None:
    first = make_keyring(tmp_path / "keys", clock)
    first.ensure()
    second = make_keyring(tmp_path / "keys", clock, refresh_interval=0)
    second.load()
    cached = make_keyring(tmp_path / "keys", clock, refresh_interval=3600)
    cached.load()
    before = second.jwks().etag

    new = first.rotate("ES256")
    assert new.kid in published(second)
    assert second.jwks().etag != before
    assert new.kid not in published(cached)  # not checked again within its interval

    clock.advance(LEAD)
    assert signing_kid(second, "ES256") == new.kid


def test_revoked_key_leaves_the_jwks(tmp_path: Path, clock: ManualClock) -> None:
    directory = tmp_path / "keys"
    keyring = make_keyring(directory, clock)
    keyring.ensure()
    es = signing_kid(keyring, "ES256")
    path = directory / "keyring.json"
    document = json.loads(path.read_text())
    for entry in document["keys"]:
        if entry["kid"] == es:
            entry["revoked_at"] = clock.now().isoformat()
    path.write_text(json.dumps(document))

    fresh = make_keyring(directory, clock)
    fresh.load()
    assert es not in published(fresh)
    with pytest.raises(ResourceUnavailable):
        fresh.signer("ES256")
    assert fresh.ensure()[0].alg == "ES256"  # a new key replaces the revoked one


# ---- signer_at: the minting path's reading, by seconds since the epoch ----------------


def kid_at(keyring: Keyring, alg: str, clock: ManualClock) -> str:
    """The signing kid by signer_at, checked against signer at the same instant."""
    signer, header = keyring.signer_at(alg, clock.timestamp())
    assert (signer, header) == keyring.signer(alg, clock.now())
    return signer.kid


def test_signer_at_switches_at_the_microsecond_a_rotation_takes_effect(
    tmp_path: Path, clock: ManualClock
) -> None:
    keyring = make_keyring(tmp_path / "keys", clock, refresh_interval=3600)
    keyring.ensure()
    old = kid_at(keyring, "ES256", clock)
    t0 = clock.now()
    new = keyring.rotate("ES256")
    for moment, expected in [
        (t0 + LEAD - MICRO, old),
        (t0 + LEAD, new.kid),
        (t0 + LEAD - MICRO, old),  # a clock set back sees the old view again
        (t0 + LEAD + WINDOW * 3, new.kid),
    ]:
        clock.set(moment)
        assert kid_at(keyring, "ES256", clock) == expected


def test_signer_at_stops_a_retired_key_at_once(tmp_path: Path, clock: ManualClock) -> None:
    keyring = make_keyring(tmp_path / "keys", clock, refresh_interval=3600)
    keyring.ensure()
    old = kid_at(keyring, "ES256", clock)
    change = keyring.retire(old)
    assert change.replacement is not None
    assert kid_at(keyring, "ES256", clock) == change.replacement.kid


def test_signer_at_sees_another_process_rotate_when_it_looks_at_the_store(
    tmp_path: Path, clock: ManualClock
) -> None:
    first = make_keyring(tmp_path / "keys", clock)
    first.ensure()
    looking = make_keyring(tmp_path / "keys", clock, refresh_interval=0)
    looking.load()
    cached = make_keyring(tmp_path / "keys", clock, refresh_interval=3600)
    cached.load()
    old = kid_at(cached, "ES256", clock)
    assert kid_at(looking, "ES256", clock) == old

    first.revoke(old)  # the replacement signs at once
    assert kid_at(looking, "ES256", clock) != old
    assert kid_at(cached, "ES256", clock) == old  # not looked at within its interval, as before
    cached.refresh_interval = 0
    assert kid_at(cached, "ES256", clock) != old


def test_a_revocation_set_for_later_stops_signing_at_its_time(
    tmp_path: Path, clock: ManualClock
) -> None:
    directory = tmp_path / "keys"
    make_keyring(directory, clock).ensure()
    path = directory / "keyring.json"
    document = json.loads(path.read_text())
    t0 = clock.now()
    es = next(entry["kid"] for entry in document["keys"] if entry["alg"] == "ES256")
    for entry in document["keys"]:
        if entry["kid"] == es:
            entry["revoked_at"] = (t0 + LEAD).isoformat()
    path.write_text(json.dumps(document))

    keyring = make_keyring(directory, clock, refresh_interval=3600)
    keyring.load()
    assert kid_at(keyring, "ES256", clock) == es  # the view is derived now, before it
    clock.set(t0 + LEAD - MICRO)
    assert kid_at(keyring, "ES256", clock) == es
    clock.set(t0 + LEAD)
    with pytest.raises(ResourceUnavailable):
        keyring.signer_at("ES256", clock.timestamp())
    with pytest.raises(ResourceUnavailable):
        keyring.signer("ES256", clock.now())
    assert es not in published(keyring)


def test_signer_at_refuses_an_algorithm_with_no_key(tmp_path: Path, clock: ManualClock) -> None:
    keyring = make_keyring(tmp_path / "keys", clock)
    keyring.ensure(["ES256"])
    with pytest.raises(ResourceUnavailable, match="RS256"):
        keyring.signer_at("RS256", clock.timestamp())
