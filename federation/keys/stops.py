"""Which signing keys are stopped, as a batch of audit rows checks before it commits.

A token's audit row is committed only if its signing key was not retired or revoked
first, so that once a retire or revoke returns no replica hands out a token of that key
(``federation.store.issuing.group_commit``). The ``database`` and ``aws-kms`` key stores
keep the stops in the database, and the batch's own transaction reads them, locked. The
``file`` store keeps them in its manifest, so :class:`ManifestStops` holds the keys
directory's lock shared around each commit: a writer of the manifest (retire, revoke,
rotate) waits for the commits in flight, and a commit that starts after the manifest
changed reads the change.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime

from federation.errors import ResourceUnavailable
from federation.keys.files import INTENT, FileKeyStore
from federation.keys.keyring import KeyStore
from federation.store.deadlines import STATEMENT_DEADLINE
from federation.store.issuing.group_commit import KeyStops

BUSY_POLL = 0.0005  # seconds between tries while a writer holds the keys directory


class ManifestStops:
    """The file store's stops, read from its manifest under the directory's lock."""

    def __init__(self, store: FileKeyStore) -> None:
        self.store = store
        self._manifest: bytes | None = None
        self._stops: dict[str, datetime] = {}

    @asynccontextmanager
    async def held(self) -> AsyncIterator[Mapping[str, datetime]]:
        """The stops, with the lock held shared until the context exits. Never waits on
        the event loop: while a writer holds (or waits for) the lock, it looks again
        every half millisecond, up to the statement deadline."""
        descriptor = await self._shared()
        try:
            yield self._read()
        finally:
            os.close(descriptor)  # NOTE: closing the descriptor releases its lock

    async def _shared(self) -> int:
        deadline = time.monotonic() + STATEMENT_DEADLINE
        while True:
            descriptor = self._try_shared()
            if descriptor is not None:
                return descriptor
            if time.monotonic() >= deadline:
                raise ResourceUnavailable(
                    "the signing keys are being changed; try again", headers={"Retry-After": "1"}
                )
            await asyncio.sleep(BUSY_POLL)

    def _try_shared(self) -> int | None:
        """A descriptor holding the lock shared, or None while a writer holds it or
        waits for it (the writer's intent lock: no new reader may starve it)."""
        intent = self.store.open_lock(INTENT)
        try:
            if not _locked(intent, fcntl.LOCK_SH):
                return None
            descriptor = self.store.open_lock()
            if _locked(descriptor, fcntl.LOCK_SH):
                return descriptor
            os.close(descriptor)
            return None
        finally:
            os.close(intent)

    def _read(self) -> dict[str, datetime]:
        """Parsed again only when the manifest's bytes changed."""
        try:
            manifest = self.store.manifest.read_bytes()
        except FileNotFoundError:
            manifest = None
        except OSError as exc:
            raise ResourceUnavailable(
                f"cannot read {self.store.manifest}: {exc.strerror}", headers={"Retry-After": "1"}
            ) from exc
        if manifest != self._manifest or manifest is None:
            self._stops = self.store.stops(manifest)
            self._manifest = manifest
        return self._stops


def recording_stops(store: KeyStore) -> KeyStops | None:
    """What a batch of audit rows holds to check ``store``'s stops: None where the batch's
    transaction reads them itself (the keys live in the database)."""
    return ManifestStops(store) if isinstance(store, FileKeyStore) else None


def _locked(descriptor: int, operation: int) -> bool:
    try:
        fcntl.flock(descriptor, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
