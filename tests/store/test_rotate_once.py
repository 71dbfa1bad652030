"""At most one ``next`` key per algorithm: a rotation while one waits to sign answers
that key and makes none, also when replicas rotate together. The file key store, and
the database key store on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from federation.clock import ManualClock
from federation.keys import KeyRecord, Keyring, KeyState
from federation.keys.kek import new_kek
from federation.server.runtime import open_keyring
from federation.settings import Settings
from federation.store import Store
from tests.conftest import make_settings

REPLICAS = 4
WAIT = 60.0  # seconds a replica's thread may take, at most


@pytest.fixture(params=["database-store", "file-store"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    if request.param == "database-store":
        return make_settings(tmp_path, database_url, key_store="database", kek=new_kek())
    return make_settings(tmp_path, database_url)


def waiting(keyring: Keyring, alg: str) -> list[str]:
    """The kids of ``alg``'s ``next`` keys, as the store holds them now."""
    keyring.load()
    return [
        s.record.kid for s in keyring.statuses() if s.record.alg == alg and s.state is KeyState.NEXT
    ]


def test_a_rotation_while_a_key_waits_answers_that_key(
    settings: Settings, db: Store, clock: ManualClock
) -> None:
    keyring = open_keyring(settings, clock, db)
    keyring.ensure()
    first = keyring.rotate("ES256")
    clock.advance(timedelta(minutes=5))

    again = keyring.rotate("ES256")
    assert again.kid == first.kid
    assert again.activates_at == first.activates_at  # its wait is not restarted
    assert waiting(keyring, "ES256") == [first.kid]
    assert not keyring.rotation("ES256").created
    assert keyring.rotation("RS256").created  # each algorithm on its own

    clock.set(first.activates_at)  # the waiting key signs: the next rotation makes one
    later = keyring.rotation("ES256")
    assert later.created
    assert later.record.kid != first.kid
    assert waiting(keyring, "ES256") == [later.record.kid]


def test_replicas_rotating_together_publish_one_key(
    settings: Settings, db: Store, clock: ManualClock
) -> None:
    open_keyring(settings, clock, db).ensure()
    barrier = threading.Barrier(REPLICAS)
    answers: list[KeyRecord] = []

    def replica() -> None:
        keyring = open_keyring(settings, clock, db)  # a keyring (and cache) of its own
        keyring.load()
        barrier.wait(timeout=WAIT)
        answers.append(keyring.rotate("ES256"))

    threads = [threading.Thread(target=replica) for _ in range(REPLICAS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT)
    assert len(answers) == REPLICAS
    assert len({answer.kid for answer in answers}) == 1  # each answers the one key
    assert waiting(open_keyring(settings, clock, db), "ES256") == [answers[0].kid]
