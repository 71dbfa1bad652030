"""The keyring: which key signs now, and which keys the JWKS publishes."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import orjson

from federation.clock import Clock
from federation.errors import InvalidRequest, ResourceNotFound, ResourceUnavailable
from federation.keys.jwk import public_jwk
from federation.keys.jws import header_segment
from federation.keys.lifecycle import PUBLISHED, KeyRecord, KeyState, KeyStatus, statuses
from federation.keys.signers import ALGORITHMS, Signer


class StoredKeyLike(Protocol):
    @property
    def record(self) -> KeyRecord: ...

    @property
    def signer(self) -> Signer: ...


# Given the stored keys, when a new key should start signing; None: no new key.
Plan = Callable[[list[KeyRecord]], datetime | None]


class KeyStore(Protocol):
    """Where keys live: a directory, the database (sealed), or AWS KMS."""

    def version(self) -> Hashable | None:
        """A value that changes whenever the stored keys do."""
        ...

    def load(self) -> Iterable[StoredKeyLike]: ...

    def create_if(self, plan: Plan, alg: str, *, created_at: datetime) -> StoredKeyLike | None:
        """Create a key of ``alg`` if ``plan`` says when it signs. Deciding and creating
        happen under one lock across processes, so replicas deciding together act once."""
        ...

    def update(
        self,
        kid: str,
        *,
        activates_at: datetime | None = None,
        retired_at: datetime | None = None,
        revoked_at: datetime | None = None,
    ) -> KeyRecord:
        """Set the times given (``None``: leave as is) of one key."""
        ...


@dataclass(frozen=True)
class KeyChange:
    """What a retirement or revocation did: the key, and the key that signs instead."""

    record: KeyRecord
    replacement: KeyRecord | None


@dataclass(frozen=True)
class Rotation:
    """What a manual rotation of one algorithm did: the key it published (``created``),
    or the ``next`` key that was published already, which it left as the only one."""

    record: KeyRecord
    created: bool


@dataclass(frozen=True)
class Jwks:
    body: bytes
    etag: str


@dataclass(frozen=True)
class _View:
    """Everything derived from the keys for a span of time in which nothing changes."""

    derived_at: datetime
    valid_until: datetime | None
    statuses: tuple[KeyStatus, ...]
    signers: dict[str, tuple[Signer, bytes]]
    jwks: Jwks
    # The same span in seconds since the epoch, for readers that hold no datetime.
    # Correctly rounded from whole microseconds, so each bound compares as its datetime.
    from_seconds: float
    until_seconds: float  # inf: valid until the keys change


@dataclass
class _Snapshot:
    keys: tuple[StoredKeyLike, ...]
    version: Hashable | None
    view: _View | None = field(default=None)


# Seconds between looks at the key store: how soon a replica's JWKS shows a change that
# another replica made (a revoked key leaves it within a second). Signing does not wait
# for it: a token whose key was stopped is refused when its audit row is committed.
REFRESH_INTERVAL = 0.5


class Keyring:
    """Picks the signing key per algorithm and renders the JWKS, from one key store.

    Several processes may share a store: each notices a changed store within
    ``refresh_interval`` seconds. That is safe for a new key because it is published for
    ``lead_time`` (longer than any JWKS cache lifetime) before anything is signed with it;
    a key retired or revoked elsewhere is caught when a token's audit row is committed
    (``federation.issuing.pipeline``), so none of its tokens leaves meanwhile.
    """

    def __init__(
        self,
        store: KeyStore,
        clock: Clock,
        *,
        verification_window: timedelta,
        lead_time: timedelta,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self.store = store
        self.clock = clock
        self.verification_window = verification_window
        self.lead_time = lead_time
        self.refresh_interval = refresh_interval
        self._snapshot = _Snapshot(keys=(), version=None)
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def load(self) -> None:
        version = self.store.version()
        self._snapshot = _Snapshot(keys=tuple(self.store.load()), version=version)
        self._checked_at = time.monotonic()

    def reload(self) -> None:
        """Read the store again now, whatever the interval says (I/O: off the event loop)."""
        with self._lock:
            self.load()

    # ---- changes ----------------------------------------------------------------------

    def ensure(self, algorithms: Iterable[str] = ALGORITHMS) -> list[KeyRecord]:
        """Create a key signing at once for each algorithm with none (first start)."""
        return self._create(algorithms, self._unless_usable)

    def rotate(self, alg: str) -> KeyRecord:
        """:meth:`rotation`'s key: the new one, or the ``next`` one published already."""
        return self.rotation(alg).record

    def rotation(self, alg: str) -> Rotation:
        """Publish a new key now; it signs once ``lead_time`` has passed (at once when no
        key signs yet: then there is no verifier to warn in advance). When a ``next`` key
        of ``alg`` is published already, that one is the answer and nothing is made: at
        most one key of an algorithm waits to sign, however often (and wherever) this is
        called, because the store decides under its lock across processes."""
        if alg not in ALGORITHMS:
            raise InvalidRequest(f"unknown algorithm {alg!r}; use one of {', '.join(ALGORITHMS)}")
        with self._lock:
            now = self.clock.now()
            waiting: list[KeyRecord] = []  # what the plan found, under the store's lock

            def plan(records: list[KeyRecord]) -> datetime | None:
                found = statuses(records, now, self.verification_window)
                mine = [s for s in found if s.record.alg == alg]
                pending = [s.record for s in mine if s.state is KeyState.NEXT]
                if pending:
                    # the newest is the one that will sign (a store may hold more from before)
                    waiting[:] = [max(pending, key=lambda r: (r.activates_at, r.created_at))]
                    return None
                waiting.clear()
                signing = any(s.state is KeyState.ACTIVE for s in mine)
                return now + self.lead_time if signing else now

            made = self.store.create_if(plan, alg, created_at=now)
            self.load()  # NOTE: also when nothing was made: it may be another replica's key
        if made is not None:
            return Rotation(record=made.record, created=True)
        return Rotation(record=waiting[0], created=False)

    def rotate_due(
        self, period: timedelta, algorithms: Iterable[str] = ALGORITHMS
    ) -> list[KeyRecord]:
        """The scheduled rotation: publish a successor ``lead_time`` before the active key
        of an algorithm has signed for ``period``, unless one is published already."""

        def plan(alg: str, now: datetime) -> Plan:
            def due(records: list[KeyRecord]) -> datetime | None:
                mine = [
                    s
                    for s in statuses(records, now, self.verification_window)
                    if s.record.alg == alg
                ]
                if any(s.state is KeyState.NEXT for s in mine):
                    return None
                active = [s.record.activates_at for s in mine if s.state is KeyState.ACTIVE]
                if not active:
                    return now  # nothing signs: a key at once
                publish_at = max(active) + period - self.lead_time
                return now + self.lead_time if publish_at <= now else None

            return due

        return self._create(algorithms, plan)

    def retire(self, kid: str) -> KeyChange:
        """Emergency: stop signing with ``kid`` now. It stays published for its tokens; a
        ``next`` key of its algorithm signs at once, or a new one is made."""
        return self._stop(kid, revoke=False)

    def revoke(self, kid: str) -> KeyChange:
        """Compromise: drop ``kid`` from the JWKS now. Tokens it signed stop verifying."""
        return self._stop(kid, revoke=True)

    def _stop(self, kid: str, *, revoke: bool) -> KeyChange:
        """Retire or revoke ``kid``. When it is the key that signs, its replacement signs
        first: the newest ``next`` key (published already, though perhaps not yet in
        every verifier's cache), or else a new key; so that no replica, reading the store
        between the two writes, finds no key to sign with. Once this returns, no replica
        records a token signed by ``kid``: the audit commit checks the key's stop."""
        with self._lock:
            now = self.clock.now()
            found = statuses(self._records(), now, self.verification_window)
            target = next((s for s in found if s.record.kid == kid), None)
            if target is None:
                raise ResourceNotFound(f"signing key {kid} not found")
            alg = target.record.alg
            others = [s for s in found if s.record.alg == alg and s.record.kid != kid]
            replacement = None
            if target.state is KeyState.ACTIVE and not any(
                s.state is KeyState.ACTIVE for s in others
            ):
                pending = [s.record for s in others if s.state is KeyState.NEXT]
                if pending:
                    newest = max(pending, key=lambda r: (r.activates_at, r.created_at))
                    replacement = self.store.update(newest.kid, activates_at=now)
                else:
                    made = self.store.create_if(
                        self._unless_usable(alg, now, besides=kid), alg, created_at=now
                    )
                    replacement = made.record if made is not None else None
            if revoke:
                record = self.store.update(kid, revoked_at=now)
            else:
                record = self.store.update(kid, retired_at=now)
            self.load()
            return KeyChange(record=record, replacement=replacement)

    def _create(
        self, algorithms: Iterable[str], plan: Callable[[str, datetime], Plan]
    ) -> list[KeyRecord]:
        created = []
        with self._lock:
            now = self.clock.now()
            for alg in algorithms:
                key = self.store.create_if(plan(alg, now), alg, created_at=now)
                if key is not None:
                    created.append(key.record)
            if created or not self._snapshot.keys:
                self.load()
        return created

    def _unless_usable(self, alg: str, now: datetime, *, besides: str | None = None) -> Plan:
        """A key signing at once, unless one of ``alg`` (other than ``besides``, the key
        being stopped) signs or is about to."""

        def plan(records: list[KeyRecord]) -> datetime | None:
            usable = [
                s
                for s in statuses(records, now, self.verification_window)
                if s.record.alg == alg
                and s.record.kid != besides
                and s.state in (KeyState.ACTIVE, KeyState.NEXT)
            ]
            return None if usable else now

        return plan

    def _records(self) -> list[KeyRecord]:
        return [key.record for key in self.store.load()]

    # ---- reading ------------------------------------------------------------------------

    def statuses(self) -> tuple[KeyStatus, ...]:
        return self._current().statuses

    def signer(self, alg: str, now: datetime | None = None) -> tuple[Signer, bytes]:
        """The active signer for ``alg`` and its encoded JWS header."""
        found = self._current(now).signers.get(alg)
        if found is None:
            raise ResourceUnavailable(
                f"no {alg} signing key is active; run `federation init` or rotate the keys"
            )
        return found

    def signer_at(self, alg: str, timestamp: float) -> tuple[Signer, bytes]:
        """:meth:`signer` at ``timestamp`` (seconds since the epoch): the minting path.

        While the store needs no look and ``timestamp`` lies in the span of the current
        view, that is two comparisons and a lookup; otherwise it is :meth:`signer`.
        """
        view = self._snapshot.view
        if (
            view is not None
            and view.from_seconds <= timestamp < view.until_seconds
            and time.monotonic() - self._checked_at < self.refresh_interval
        ):
            found = view.signers.get(alg)
            if found is not None:
                return found
        return self.signer(alg, datetime.fromtimestamp(timestamp, UTC))

    def jwks(self) -> Jwks:
        return self._current().jwks

    def _current(self, now: datetime | None = None) -> _View:
        self._maybe_refresh()
        return self._view(now or self.clock.now())

    @property
    def refresh_due(self) -> bool:
        """Whether the next read looks at the store (I/O) before it answers."""
        return time.monotonic() - self._checked_at >= self.refresh_interval

    def _maybe_refresh(self) -> None:
        if not self.refresh_due:
            return
        self._checked_at = time.monotonic()
        if self.store.version() != self._snapshot.version:
            with self._lock:
                self.load()

    def _view(self, now: datetime) -> _View:
        snapshot = self._snapshot
        view = snapshot.view
        if (
            view is None
            or now < view.derived_at
            or (view.valid_until is not None and now >= view.valid_until)
        ):
            view = _derive(snapshot.keys, now, self.verification_window)
            snapshot.view = view
        return view


def _derive(keys: tuple[StoredKeyLike, ...], now: datetime, window: timedelta) -> _View:
    by_kid = {key.record.kid: key for key in keys}
    derived = statuses((key.record for key in keys), now, window)
    signers: dict[str, tuple[Signer, bytes]] = {}
    for status in derived:  # newest first: the first active key of an algorithm signs
        if status.state is KeyState.ACTIVE and status.record.alg not in signers:
            signer = by_kid[status.record.kid].signer
            signers[status.record.alg] = (signer, header_segment(signer))
    published = [
        public_jwk(by_kid[s.record.kid].signer.public_key, alg=s.record.alg, kid=s.record.kid)
        for s in derived
        if s.state in PUBLISHED
    ]
    body = orjson.dumps({"keys": published})
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    # NOTE: a revocation set for later is a change too (``statuses`` counts it only once
    # it has passed), or a view derived before it would keep the key signing.
    changes = [
        moment
        for s in derived
        for moment in (s.record.activates_at, s.retires_at, s.removed_at, s.record.revoked_at)
        if moment is not None and moment > now
    ]
    valid_until = min(changes, default=None)
    return _View(
        derived_at=now,
        valid_until=valid_until,
        statuses=tuple(derived),
        signers=signers,
        jwks=Jwks(body=body, etag=etag),
        from_seconds=now.timestamp(),
        until_seconds=math.inf if valid_until is None else valid_until.timestamp(),
    )
