"""A key's lineage on SQLite and PostgreSQL: deleting a key deletes every key created
with it, even keys whose creation races the deletion, and no key authenticates, through
the ORM or through the issuing port, once a key above it is deleted."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime

import pytest
from sqlalchemy import text, update

from federation.clock import ManualClock
from federation.errors import AuthenticationRequired, FederationError, NotAuthorized
from federation.registry import principals as accounts
from federation.registry.auth import Caller, authenticate, secret_hash
from federation.store import Store
from federation.store.issuing import issue_store
from federation.store.lineage import MAX_LINEAGE_DEPTH
from federation.store.models import ApiKey
from tests.store.key_races import (
    USER,
    Race,
    create_user,
    personal_key,
    still_authenticating,
    survivors,
)

# Against the code without the locks (a plain insert, or no row locks, or a deletion that
# reads the children before it marks their parent deleted), at least 18 of 100 trials
# left a surviving key on either database, in 30 runs of each: 200 trials fail it surely.
TRIALS = 200
CREATORS = 2  # threads minting keys with the doomed key in each trial, beside the deleter
LANES = 3  # trials at a time, each on a lineage of its own
LOCK_DEADLINE = 5.0  # seconds to look for a session waiting on a row lock


def bootstrap(store: Store, now: datetime) -> Caller:
    """The bootstrap admin's caller, and the user whose keys the tests make."""
    with store.session() as session:
        created = accounts.bootstrap_admin(session, now)
        assert created is not None
        admin = authenticate(session, created.raw, now)
    create_user(store, now)
    return admin


def mint(store: Store, presented: str, now: datetime) -> accounts.CreatedKey:
    """A one-day personal key, created with the key ``presented``, as the API does."""
    with store.session() as session:
        return personal_key(session, authenticate(session, presented, now), now)


def admin_key(store: Store, admin: Caller, now: datetime) -> accounts.CreatedKey:
    with store.session() as session:
        return personal_key(
            session, admin, now, name="root", principal_uid=USER, expires_in="never"
        )


def delete(store: Store, admin: Caller, key_id: str, now: datetime) -> None:
    with store.session() as session:
        accounts.delete_api_key(session, admin, key_id, now)


def port_accepts(store: Store, keys: list[str]) -> list[bool]:
    """Whether the issuing port finds each raw key a live caller."""

    async def look() -> list[bool]:
        port = issue_store(store)
        try:
            return [await port.caller(secret_hash(key)) is not None for key in keys]
        finally:
            await port.close()

    return asyncio.run(look())


# ---- the race -------------------------------------------------------------------------


@pytest.mark.slow
def test_no_key_created_in_a_race_with_its_ancestors_deletion_survives_it(
    db: Store, clock: ManualClock
) -> None:
    """Two hundred trials, each: creators mint keys with a key while an admin deletes it
    (or, every third trial, the key above it). Once every trial is over, no key is live
    below a deleted one, and no key made or presented authenticates."""
    admin = bootstrap(db, clock.now())
    outcome = Race(db, admin, clock.now, creators=CREATORS).run(TRIALS, lanes=LANES)

    assert outcome.late == 0, "a key authenticated after its deletion had returned"
    assert survivors(db) == []
    every_key = outcome.minted + outcome.presented
    assert still_authenticating(db, every_key, clock.now()) == []
    assert not any(port_accepts(db, every_key))
    # The trials raced: keys were minted on both sides of the deletions.
    assert outcome.minted


# ---- the rules the race relies on, one at a time ---------------------------------------


def test_a_key_deleted_after_it_authenticated_creates_nothing(
    db: Store, clock: ManualClock
) -> None:
    admin = bootstrap(db, clock.now())
    root = admin_key(db, admin, clock.now())
    with db.session() as session:
        caller = authenticate(session, root.raw, clock.now())
        # The admin deletes the key between its authentication and its creation.
        delete(db, admin, root.row.id, clock.now())
        with pytest.raises(AuthenticationRequired):
            personal_key(session, caller, clock.now())
    assert survivors(db) == []


def test_a_key_below_a_deleted_key_is_refused_by_both_authentications(
    db: Store, clock: ManualClock
) -> None:
    """Rows an older version could leave behind: a key deleted while the keys below it
    were not. Neither the API's authentication nor the issuing port accepts those."""
    admin = bootstrap(db, clock.now())
    root = admin_key(db, admin, clock.now())
    child = mint(db, root.raw, clock.now())
    grandchild = mint(db, child.raw, clock.now())
    sibling = admin_key(db, admin, clock.now())
    with db.session() as session:
        session.execute(
            update(ApiKey).where(ApiKey.id == root.row.id).values(deleted_at=clock.now())
        )

    below = [child.raw, grandchild.raw]
    assert still_authenticating(db, below, clock.now()) == []
    assert port_accepts(db, [*below, sibling.raw]) == [False, False, True]
    assert still_authenticating(db, [sibling.raw], clock.now()) == [sibling.raw]


def test_a_lineage_is_at_most_its_depth_bound_deep(db: Store, clock: ManualClock) -> None:
    admin = bootstrap(db, clock.now())
    lineage = [admin_key(db, admin, clock.now())]
    for _ in range(MAX_LINEAGE_DEPTH):
        lineage.append(mint(db, lineage[-1].raw, clock.now()))
    deepest = lineage[-1]
    with pytest.raises(NotAuthorized, match=f"{MAX_LINEAGE_DEPTH} keys above it"):
        mint(db, deepest.raw, clock.now())
    # A key below the bound, which an older version could have made, is refused.
    with db.session() as session:
        session.add(
            ApiKey(
                id="ak_" + "d" * 16,
                name="too-deep",
                type="personal",
                principal_uid=USER,
                scopes=["federate"],
                key_hash=secret_hash("wk-" + "D" * 43),
                last4="DDDD",
                parent_key_id=deepest.row.id,
                created_at=clock.now(),
            )
        )
    assert still_authenticating(db, [deepest.raw, "wk-" + "D" * 43], clock.now()) == [deepest.raw]
    assert port_accepts(db, [deepest.raw, "wk-" + "D" * 43]) == [True, False]


# ---- PostgreSQL: the row locks that serialize creation and deletion -------------------


def _in_thread(work: object) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())  # type: ignore[operator]
        except FederationError as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def waits_on_a_row_lock(store: Store, thread: threading.Thread) -> bool:
    """Whether a session of ``store``'s database comes to wait on a lock while
    ``thread`` runs (looked at until a deadline: the server gives up a wait after
    1.4 s)."""
    deadline = time.monotonic() + LOCK_DEADLINE
    with store.engine.connect() as connection:
        while thread.is_alive() and time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            connection.rollback()
            if waiting:
                return True
            time.sleep(0.005)  # NOTE: between looks at a condition, not a guess
    return False


@pytest.mark.postgres
def test_a_deletion_waits_for_a_creation_in_flight_and_deletes_its_key(
    pg: Store, clock: ManualClock
) -> None:
    admin = bootstrap(pg, clock.now())
    root = admin_key(pg, admin, clock.now())
    creating = pg.new_session()
    try:
        child = personal_key(
            creating, authenticate(creating, root.raw, clock.now()), clock.now()
        )  # not committed: the creation holds its lock on the root's row
        deleting, outcome = _in_thread(lambda: delete(pg, admin, root.row.id, clock.now()))
        assert waits_on_a_row_lock(pg, deleting), "the deletion did not wait for the creation"
        creating.commit()
    finally:
        creating.close()
    deleting.join(timeout=30)
    assert not deleting.is_alive()
    assert outcome == [None]
    assert still_authenticating(pg, [root.raw, child.raw], clock.now()) == []
    assert survivors(pg) == []


@pytest.mark.postgres
def test_a_creation_waits_for_a_deletion_in_flight_and_is_refused(
    pg: Store, clock: ManualClock
) -> None:
    admin = bootstrap(pg, clock.now())
    root = admin_key(pg, admin, clock.now())
    with pg.session() as session:
        caller = authenticate(session, root.raw, clock.now())
    deleting = pg.new_session()
    try:
        accounts.delete_api_key(deleting, admin, root.row.id, clock.now())  # not committed

        def create() -> accounts.CreatedKey:
            with pg.session() as session:
                return personal_key(session, caller, clock.now())

        creating, outcome = _in_thread(create)
        assert waits_on_a_row_lock(pg, creating), "the creation did not wait for the deletion"
        deleting.commit()
    finally:
        deleting.close()
    creating.join(timeout=30)
    assert not creating.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], AuthenticationRequired)
    assert survivors(pg) == []
