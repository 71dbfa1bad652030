"""A signing key retired or revoked through one keyring (one replica) signs no token that
another records afterwards, however stale that one's keyring: the audit commit reads the
key's stop, locked, in its own transaction (the ``database`` key store) or under the
keys directory's lock (the ``file`` store), and the token is signed again with the key
that signs now. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from sqlalchemy import select, text

from federation.clock import ManualClock
from federation.errors import ResourceUnavailable
from federation.issuing.pipeline import IssueRequest, TokenIssuer
from federation.keys import FileKeyStore, Keyring
from federation.keys.database import DatabaseKeyStore
from federation.keys.files import INTENT
from federation.keys.kek import new_kek
from federation.keys.stops import ManifestStops
from federation.registry.auth import Caller
from federation.server.runtime import open_keyring
from federation.settings import Settings
from federation.store import Store
from federation.store.issuing import issue_store
from federation.store.issuing.port import key_stops_query
from federation.store.models import IssuedToken
from tests.conftest import make_settings
from tests.seeding import Seeded, seed

AUDIENCE = "sts.amazonaws.com"
WAIT = 30.0  # seconds a test waits for another thread, at most
AT_ANY_TIME: jwt.types.Options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


@pytest.fixture
def loop() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture(params=["database-store", "file-store"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    if request.param == "database-store":
        return make_settings(tmp_path, database_url, key_store="database", kek=new_kek())
    return make_settings(tmp_path, database_url)


class Replicas:
    """Two keyrings on one key store: ``a`` changes keys; ``b``, whose keyring never
    looks at the store by itself (a replica between two looks), issues tokens."""

    def __init__(self, settings: Settings, db: Store, clock: ManualClock) -> None:
        self.a = open_keyring(settings, clock, db)
        self.a.ensure()
        self.b = open_keyring(settings, clock, db)
        self.b.refresh_interval = 3600
        self.b.load()
        self.issuer = TokenIssuer.from_settings(settings, issue_store(db), self.b, clock)


@pytest.fixture
def replicas(
    settings: Settings, db: Store, clock: ManualClock, loop: asyncio.Runner
) -> Iterator[Replicas]:
    replicas = Replicas(settings, db, clock)
    yield replicas
    loop.run(replicas.issuer.audit.drain())
    loop.run(replicas.issuer.store.close())


@pytest.fixture
def seeded(db: Store, clock: ManualClock) -> Seeded:
    return seed(db, clock.now())


def issue(replicas: Replicas, seeded: Seeded, loop: asyncio.Runner) -> str:
    """A token for run ``r1`` from replica ``b``: the token."""

    async def issued() -> str:
        caller: Caller = await replicas.issuer.authenticate(seeded.key)
        request = IssueRequest(run_id="r1", audience=AUDIENCE, workload_token=seeded.workload_token)
        return (await replicas.issuer.issue(caller, request)).token

    return loop.run(issued())


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def audited_kids(db: Store) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(IssuedToken.kid).order_by(IssuedToken.seq)))


def published(keyring: Keyring) -> set[str]:
    keys = jwt.PyJWKSet.from_json(keyring.jwks().body.decode()).keys
    return {str(key.key_id) for key in keys}


@pytest.mark.parametrize("action", ["revoke", "retire"])
def test_a_key_stopped_at_one_replica_signs_no_token_the_other_records_after(
    replicas: Replicas, seeded: Seeded, db: Store, loop: asyncio.Runner, action: str
) -> None:
    before = issue(replicas, seeded, loop)
    old = kid_of(before)
    change = replicas.a.revoke(old) if action == "revoke" else replicas.a.retire(old)
    assert change.replacement is not None

    after = issue(replicas, seeded, loop)

    assert kid_of(after) == change.replacement.kid != old
    assert audited_kids(db) == [old, change.replacement.kid]  # the refused try left no row
    keys = jwt.PyJWKSet.from_json(replicas.a.jwks().body.decode())
    key = next(key for key in keys.keys if key.key_id == kid_of(after))
    # NOTE: the signature and the claims; the times are the test clock's, not today's
    jwt.decode(after, key.key, algorithms=["ES256"], audience=AUDIENCE, options=AT_ANY_TIME)
    # the refusal made b read its keyring again: its JWKS follows at once
    assert (old in published(replicas.b)) is (action == "retire")


def test_a_stop_set_ahead_is_left_to_its_time_unless_it_is_within_a_minute(
    replicas: Replicas, seeded: Seeded, db: Store, clock: ManualClock, loop: asyncio.Runner
) -> None:
    old = kid_of(issue(replicas, seeded, loop))

    replicas.a.store.update(old, revoked_at=clock.now() + timedelta(hours=2))
    replicas.b.load()
    assert kid_of(issue(replicas, seeded, loop)) == old  # signs until its time

    # a stop within a minute of signing is taken as now (the clocks of replicas may
    # disagree); the keyring still picks the key, so the token fails, retryable
    replicas.a.store.update(old, revoked_at=clock.now() + timedelta(seconds=30))
    with pytest.raises(ResourceUnavailable, match=f"{old} was retired or revoked") as refused:
        issue(replicas, seeded, loop)
    assert refused.value.retryable
    assert refused.value.headers["Retry-After"] == "1"
    assert audited_kids(db) == [old, old]


# ---- the locks that make the check exact ------------------------------------------------


def test_a_manifest_writer_waits_for_a_commit_in_flight_and_no_new_one_starts_meanwhile(
    tmp_path: Path, clock: ManualClock, loop: asyncio.Runner
) -> None:
    directory = tmp_path / "keys"
    keyring = open_keyring(make_settings(tmp_path), clock)
    keyring.ensure()
    kid = keyring.signer("ES256")[0].kid
    stops = ManifestStops(FileKeyStore(directory))
    writer_store = FileKeyStore(directory)  # another process's view of the directory
    written = threading.Event()

    def revoke() -> None:
        writer_store.update(kid, revoked_at=clock.now())
        written.set()

    async def scenario() -> None:
        async with stops.held() as found:  # a batch of audit rows, committing
            assert kid not in found
            writer = threading.Thread(target=revoke)
            writer.start()
            deadline = time.monotonic() + WAIT
            while _free(directory / INTENT):  # until the writer waits for the lock
                assert time.monotonic() < deadline
                await asyncio.sleep(0.001)
            assert not written.is_set()
            assert stops._try_shared() is None  # no new batch starts while it waits
        writer.join(timeout=WAIT)
        assert written.is_set()
        async with stops.held() as found:  # the next batch reads the stop
            assert found[kid] == clock.now()

    loop.run(scenario())


def _free(path: Path) -> bool:
    """Whether no one holds (or waits for) ``path``'s lock exclusively."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)
    return True


def test_a_batch_share_locks_its_keys_until_it_commits_on_postgresql(
    pg: Store, clock: ManualClock
) -> None:
    settings = make_settings(
        Path("unused"), str(pg.engine.url), key_store="database", kek=new_kek()
    )
    keyring = open_keyring(settings, clock, pg)
    keyring.ensure()
    kid = keyring.signer("ES256")[0].kid
    store = keyring.store
    assert isinstance(store, DatabaseKeyStore)
    done = threading.Event()

    def revoke() -> None:
        store.update(kid, revoked_at=clock.now())
        done.set()

    with pg.engine.connect() as batch:  # the batch's read, before its insert and commit
        batch.execute(key_stops_query(1, share_lock=True), {"kid_0": kid})
        writer = threading.Thread(target=revoke)
        writer.start()
        deadline = time.monotonic() + WAIT
        while not _waiting_for_a_lock(pg):
            assert time.monotonic() < deadline, "the revoke never waited"
            time.sleep(0.01)
        assert not done.is_set()
        batch.commit()
    writer.join(timeout=WAIT)
    assert done.is_set()


def _waiting_for_a_lock(db: Store) -> bool:
    with db.engine.connect() as probe:
        waiting = probe.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


# ---- each replica sees every change when it looks --------------------------------------


def test_the_database_store_version_changes_with_any_key_time(
    db: Store, clock: ManualClock
) -> None:
    settings = make_settings(
        Path("unused"), str(db.engine.url), key_store="database", kek=new_kek()
    )
    keyring = open_keyring(settings, clock, db)
    keyring.ensure()
    es, rs = (keyring.signer(alg)[0].kid for alg in ("ES256", "RS256"))
    keyring.store.update(es, revoked_at=clock.now())
    before = keyring.store.version()
    # revoked by a replica whose clock runs behind: no maximum moves
    keyring.store.update(rs, revoked_at=clock.now() - timedelta(seconds=1))
    assert keyring.store.version() != before


def test_the_file_store_version_changes_with_writes_in_one_clock_tick(
    tmp_path: Path, clock: ManualClock
) -> None:
    keyring = open_keyring(make_settings(tmp_path), clock)
    keyring.ensure()
    store = keyring.store
    assert isinstance(store, FileKeyStore)
    es = keyring.signer("ES256")[0].kid
    store.update(es, revoked_at=clock.now())
    stamp = store.manifest.stat()
    before = store.version()
    store.update(es, revoked_at=clock.now() + timedelta(seconds=1))  # as long, to the byte
    os.utime(store.manifest, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # within one tick
    assert store.manifest.stat().st_size == stamp.st_size
    assert store.version() != before
