"""Races between minting API keys with a key and deleting that key (or its ancestor),
and the check that no key outlives its ancestor's deletion: for the lineage suites."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from federation.errors import AuthenticationRequired
from federation.registry import principals as accounts
from federation.registry.auth import Caller, authenticate
from federation.store import Store
from federation.store.models import ApiKey

USER = "leaky"  # the user whose keys the races mint
WAIT = 30.0  # seconds any thread of a trial waits for another, at most


def personal_key(
    session: Session,
    caller: Caller,
    now: datetime,
    *,
    name: str = "copy",
    principal_uid: str | None = None,
    expires_in: str = "1d",
) -> accounts.CreatedKey:
    """A personal key with the federate scope, created by ``caller`` as the API creates
    it (for the caller's own principal unless ``principal_uid`` names another)."""
    return accounts.create_api_key(
        session,
        caller,
        name=name,
        type="personal",
        principal_uid=principal_uid,
        scopes=["federate"],
        expires_in=expires_in,
        now=now,
    )


def survivors(store: Store) -> list[str]:
    """The ids of the keys that are not deleted while an ancestor is."""
    with store.session() as session:
        rows = session.execute(select(ApiKey.id, ApiKey.parent_key_id, ApiKey.deleted_at)).all()
    parents = {row.id: row.parent_key_id for row in rows}
    deleted = {row.id for row in rows if row.deleted_at is not None}
    found = []
    for key_id in parents:
        if key_id in deleted:
            continue
        ancestor = parents[key_id]
        while ancestor is not None:
            if ancestor in deleted:
                found.append(key_id)
                break
            ancestor = parents.get(ancestor)
    return found


def still_authenticating(store: Store, keys: Iterable[str], now: datetime) -> list[str]:
    """The raw ``keys`` that the API's authentication still accepts."""
    accepted = []
    with store.session() as session:
        for key in keys:
            try:
                authenticate(session, key, now)
            except AuthenticationRequired:
                continue
            accepted.append(key)
    return accepted


def create_user(store: Store, now: datetime) -> None:
    with store.session() as session:
        accounts.create_principal(
            session, type="user", uid=USER, email=None, display_name=None, teams=[], now=now
        )


@dataclass
class Outcome:
    """What the trials saw: every key minted, and every breach seen while racing."""

    minted: list[str] = field(default_factory=list)
    presented: list[str] = field(default_factory=list)
    late: int = 0  # presented keys that authenticated once their deletion had returned


class Race:
    """Trials of ``creators`` threads minting one-day personal keys with a key while an
    admin deletes it (or the key that created it), all started together, so that
    creations are in flight on both sides of the deletion."""

    def __init__(
        self, store: Store, admin: Caller, now: Callable[[], datetime], *, creators: int
    ) -> None:
        self.store = store
        self.admin = admin
        self.now = now
        self.creators = creators
        self.outcome = Outcome()
        self._lock = threading.Lock()

    def run(self, trials: int, *, lanes: int = 1) -> Outcome:
        """``trials`` trials, ``lanes`` of them at a time (each on a lineage of its own)."""
        lineages = self._lineages(trials)
        workers = lanes * (self.creators + 1)  # NOTE: every thread of every lane at once
        with (
            ThreadPoolExecutor(workers, thread_name_prefix="race") as pool,
            ThreadPoolExecutor(lanes, thread_name_prefix="lane") as runner,
        ):
            done = [runner.submit(self._lane, pool, lineages[lane::lanes]) for lane in range(lanes)]
            for future in done:
                future.result()
        return self.outcome

    def _lane(self, pool: ThreadPoolExecutor, lineages: list[tuple[str, str]]) -> None:
        for doomed, presented in lineages:
            self._trial(pool, doomed, presented)

    def _trial(self, pool: ThreadPoolExecutor, doomed: str, presented: str) -> None:
        started = threading.Barrier(self.creators + 1, timeout=WAIT)
        work = [pool.submit(self._create, presented, started) for _ in range(self.creators)]
        work.append(pool.submit(self._delete, doomed, presented, started))
        for future in work:
            future.result(timeout=WAIT)
        with self._lock:
            self.outcome.presented.append(presented)

    def _lineages(self, trials: int) -> list[tuple[str, str]]:
        """For each trial, the key the admin deletes and the key the creators present:
        the same key, or (every third trial) a key and a child it made, so that the
        deletion's cascade races the creation of grandchildren. Half of the roots never
        expire. Made in one transaction, and marked used, so that no creator writes a
        key's last_used_at in the race."""
        now = self.now()
        with self.store.session() as session:
            roots = [
                personal_key(
                    session,
                    self.admin,
                    now,
                    name=f"root-{index}",
                    principal_uid=USER,
                    expires_in="never" if index % 2 else "1d",
                )
                for index in range(trials)
            ]
            session.execute(update(ApiKey).values(last_used_at=now))
            lineages = []
            for index, root in enumerate(roots):
                presented = root.raw
                if index % 3 == 2:
                    caller = authenticate(session, root.raw, now)
                    presented = self._mint(session, caller, f"child-{index}").raw
                lineages.append((root.row.id, presented))
            session.execute(update(ApiKey).values(last_used_at=now))
        return lineages

    def _mint(self, session: Session, caller: Caller, name: str) -> accounts.CreatedKey:
        return personal_key(session, caller, self.now(), name=name)

    def _create(self, presented: str, started: threading.Barrier) -> None:
        started.wait()
        try:
            with self.store.session() as session:
                caller = authenticate(session, presented, self.now())
                created = self._mint(session, caller, "copy")
        except AuthenticationRequired:
            return
        with self._lock:
            self.outcome.minted.append(created.raw)

    def _delete(self, key_id: str, presented: str, started: threading.Barrier) -> None:
        started.wait()
        with self.store.session() as session:
            accounts.delete_api_key(session, self.admin, key_id, self.now())
        if still_authenticating(self.store, [presented], self.now()):
            with self._lock:
                self.outcome.late += 1
