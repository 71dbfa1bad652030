"""The database key store: private keys sealed with the KEK, shared by every replica."""

from __future__ import annotations

import threading
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, text

from federation.clock import ManualClock
from federation.errors import ConfigurationError
from federation.keys import Keyring, KeyState, jws
from federation.keys.database import DatabaseKeyStore
from federation.keys.kek import KeyEncryptionKey, new_kek
from federation.keys.sealed import SealedMaterial
from federation.store import Store
from federation.store.models import SigningKey

KEK = new_kek()


def keyring_on(store: Store, clock: ManualClock, kek: str = KEK) -> Keyring:
    return Keyring(
        DatabaseKeyStore(store, SealedMaterial(KeyEncryptionKey.from_text(kek))),
        clock,
        verification_window=timedelta(hours=3, minutes=5),
        lead_time=timedelta(hours=1),
        refresh_interval=0,
    )


def test_keys_are_sealed_at_rest_and_sign_for_every_replica(db: Store, clock: ManualClock) -> None:
    first = keyring_on(db, clock)
    created = first.ensure()
    assert sorted(record.alg for record in created) == ["ES256", "RS256"]
    assert all(record.location.startswith("database") for record in created)

    signer, header = first.signer("ES256")
    token = jws.encode({"sub": "x"}, signer, header)
    with db.session() as session:
        sealed = b"".join(
            row.sealed_private_key or b"" for row in session.scalars(select(SigningKey))
        )
    with db.engine.connect() as connection:
        dump = repr(connection.execute(text("SELECT * FROM signing_keys")).all())
    private_der = [
        key.signer._key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        for key in first.store.load()
    ]
    for der in private_der:
        assert der not in sealed
        assert der.hex() not in dump
    assert "PRIVATE KEY" not in dump

    second = keyring_on(db, clock)  # another replica, on the same database
    second.load()
    jwks = jwt.PyJWKSet.from_json(second.jwks().body.decode())
    key = next(k for k in jwks.keys if k.key_id == signer.kid)
    assert jwt.decode(token, key.key, algorithms=["ES256"]) == {"sub": "x"}
    assert second.signer("ES256")[0].kid == signer.kid


def test_a_wrong_kek_stops_with_a_clear_error(db: Store, clock: ManualClock) -> None:
    keyring_on(db, clock).ensure()
    stranger = keyring_on(db, clock, kek=new_kek())
    with pytest.raises(ConfigurationError, match="FEDERATION_KEK does not open signing key"):
        stranger.load()


@pytest.mark.parametrize(
    "text_kek",
    ["", "short", "!" * 43, new_kek() + "AAAA"],
    ids=["empty", "short", "not-base64", "too-long"],  # one id on every xdist worker
)
def test_a_malformed_kek_is_refused_without_echoing_it(text_kek: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        KeyEncryptionKey.from_text(text_kek)
    assert text_kek not in caught.value.message or not text_kek


def test_a_sealed_key_cannot_be_moved_to_another_row(db: Store, clock: ManualClock) -> None:
    keyring_on(db, clock).ensure()
    with db.session() as session:
        rows = session.scalars(select(SigningKey).order_by(SigningKey.seq)).all()
        rows[0].sealed_private_key, rows[1].sealed_private_key = (
            rows[1].sealed_private_key,
            rows[0].sealed_private_key,
        )
    with pytest.raises(ConfigurationError, match="does not open"):
        keyring_on(db, clock).load()


def test_retire_and_revoke_are_shared(db: Store, clock: ManualClock) -> None:
    first = keyring_on(db, clock)
    first.ensure()
    second = keyring_on(db, clock)
    second.load()
    old = first.signer("RS256")[0].kid
    change = first.retire(old)
    assert change.replacement is not None
    assert second.signer("RS256")[0].kid == change.replacement.kid  # refresh_interval=0
    states = {s.record.kid: s.state for s in second.statuses()}
    assert states[old] is KeyState.RETIRED
    first.revoke(old)
    assert old not in second.jwks().body.decode()


def test_replicas_deciding_together_rotate_once(db: Store, clock: ManualClock) -> None:
    keyring_on(db, clock).ensure()
    clock.advance(timedelta(days=30))
    barrier = threading.Barrier(4)
    made: list[int] = []

    def replica() -> None:
        keyring = keyring_on(db, clock)
        barrier.wait()
        made.append(len(keyring.rotate_due(timedelta(days=30))))

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(made) == 2  # one successor per algorithm, whoever made it
    with db.session() as session:
        assert len(session.scalars(select(SigningKey)).all()) == 4
