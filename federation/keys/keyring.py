"""The keyring: which key signs now, and which keys the JWKS publishes."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import orjson

from federation.clock import Clock
from federation.errors import InvalidRequest, ResourceUnavailable
from federation.jws import header_segment
from federation.keys.jwk import public_jwk
from federation.keys.lifecycle import PUBLISHED, KeyRecord, KeyState, KeyStatus, statuses
from federation.keys.signers import ALGORITHMS, Signer


class StoredKeyLike(Protocol):
    @property
    def record(self) -> KeyRecord: ...

    @property
    def signer(self) -> Signer: ...


class KeyStore(Protocol):
    """Where keys live (a directory today; a database or a KMS behind the same seam)."""

    def version(self) -> Hashable | None:
        """A value that changes whenever the stored keys do."""
        ...

    def load(self) -> Iterable[StoredKeyLike]: ...

    def create(
        self, alg: str, *, created_at: datetime, activates_at: datetime
    ) -> StoredKeyLike: ...

    def create_if(
        self, needed: Callable[[list[KeyRecord]], bool], alg: str, *, now: datetime
    ) -> StoredKeyLike | None:
        """A key signing from ``now`` if ``needed(records)``, decided and done atomically."""
        ...


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


@dataclass
class _Snapshot:
    keys: tuple[StoredKeyLike, ...]
    version: Hashable | None
    view: _View | None = field(default=None)


class Keyring:
    """Picks the signing key per algorithm and renders the JWKS, from one key store.

    Several processes may share a store: each notices a changed store within
    ``refresh_interval`` seconds. That is safe because a new key is published for
    ``lead_time`` (longer than any JWKS cache lifetime) before anything is signed with it.
    """

    def __init__(
        self,
        store: KeyStore,
        clock: Clock,
        *,
        verification_window: timedelta,
        lead_time: timedelta,
        refresh_interval: float = 1.0,
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

    def ensure(self, algorithms: Iterable[str] = ALGORITHMS) -> list[KeyRecord]:
        """Create a signing key for each algorithm that has none (first start)."""
        created = []
        with self._lock:
            now = self.clock.now()
            for alg in algorithms:
                key = self.store.create_if(self._lacks(alg, now), alg, now=now)
                if key is not None:
                    created.append(key.record)
            self.load()
        return created

    def _lacks(self, alg: str, now: datetime) -> Callable[[list[KeyRecord]], bool]:
        """Whether no key of ``alg`` signs now or is about to."""

        def lacks(records: list[KeyRecord]) -> bool:
            usable = {KeyState.ACTIVE, KeyState.NEXT}
            found = statuses(records, now, self.verification_window)
            return not any(s.record.alg == alg and s.state in usable for s in found)

        return lacks

    def rotate(self, alg: str) -> KeyRecord:
        """Publish a new key now; it signs once ``lead_time`` has passed."""
        if alg not in ALGORITHMS:
            raise InvalidRequest(f"unknown algorithm {alg!r}; use one of {', '.join(ALGORITHMS)}")
        with self._lock:
            self.load()
            now = self.clock.now()
            # NOTE: with no key signing yet there is no verifier to warn in advance.
            starts = now + self.lead_time if alg in self._view(now).signers else now
            key = self.store.create(alg, created_at=now, activates_at=starts)
            self.load()
        return key.record

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

    def jwks(self) -> Jwks:
        return self._current().jwks

    def _current(self, now: datetime | None = None) -> _View:
        self._maybe_refresh()
        return self._view(now or self.clock.now())

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._checked_at < self.refresh_interval:
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
    changes = [
        moment
        for s in derived
        for moment in (s.record.activates_at, s.retires_at, s.removed_at)
        if moment is not None and moment > now
    ]
    return _View(
        derived_at=now,
        valid_until=min(changes, default=None),
        statuses=tuple(derived),
        signers=signers,
        jwks=Jwks(body=body, etag=etag),
    )
