"""Group commit: the audit rows of concurrent requests are written together.

A request hands its row to the batcher and awaits the commit of the batch that holds
it. One batch is written at a time (one multi-row insert and one commit); the rows that
arrive meanwhile form the next batch, which starts as soon as the previous commit
returns. There is no fixed delay, so a lone request pays nothing for the batching,
while under load a single commit (and, with a durable setting, a single flush to disk)
serves every request that arrived during the previous one.

A token is returned only after its row is committed and on disk. Where a commit returns
before its flush (SQLite, whose write-ahead log is flushed separately, off the event
loop), the next batch starts when the commit returns, and each batch's requests are
answered when a flush that began after their commit ends: one flush serves every batch
committed while the previous one ran. If a commit or its flush fails, every request of
that batch fails with ``503 resource_unavailable`` and none of their tokens leaves.
``last_used_at`` touches ride in the same batches.

A row whose signing key was stopped (retired or revoked, perhaps by another replica)
before its batch commits is not written, and its request learns so (``record`` answers
False): that token must not leave. The stops of keys kept in the database are read in
the batch's own transaction (``IssueStore.record``); those kept elsewhere (the file key
store's manifest) by :class:`KeyStops`, held around the batch's commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from federation.errors import FederationError, ResourceUnavailable
from federation.store.issuing.port import AuditEntry, IssueStore, Refusals, withdrawn

log = logging.getLogger("federation.store")

# Bounds one batch (bound parameters per statement stay far below any driver's limit).
MAX_BATCH = 256

Refusal = Callable[[str, str], FederationError]


class KeyStops(Protocol):
    """The stops of signing keys kept outside the database."""

    def held(self) -> AbstractAsyncContextManager[Mapping[str, datetime]]:
        """Each stopped key (kid -> when it stopped signing), with no stop possible
        until the context exits."""
        ...


def unavailable() -> ResourceUnavailable:
    return ResourceUnavailable("the database is unavailable", headers={"Retry-After": "1"})


class GroupCommit:
    """Batches audit rows and key touches onto one :class:`IssueStore`."""

    def __init__(
        self, store: IssueStore, refusal: Refusal, key_stops: KeyStops | None = None
    ) -> None:
        self.store = store
        self.refusal = refusal  # what a row whose run finished meanwhile answers
        self.key_stops = key_stops  # None: every key is kept in the database
        self._rows: list[tuple[AuditEntry, asyncio.Future[bool]]] = []
        self._touches: dict[int, datetime] = {}
        self._touched: list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._settling: set[asyncio.Future[None]] = set()
        self.batches = 0  # written so far (tests and benchmarks read it)

    async def record(self, entry: AuditEntry) -> bool:
        """True once ``entry`` is committed and on disk; False, with nothing written, when
        its signing key was stopped first (its token must not leave); raise what refused
        it otherwise."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._rows.append((entry, done))
        self._wake()
        return await done

    async def touch(self, key_seq: int, now: datetime) -> None:
        """Set a key's ``last_used_at`` with the next batch, and wait until it is on disk
        (raising, as a row's request does, what failed the batch)."""
        self._touches[key_seq] = max(now, self._touches.get(key_seq, now))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._touched.append(done)
        self._wake()
        await done

    async def drain(self) -> None:
        """Wait until everything handed over so far is written (or failed)."""
        while self._writer is not None or self._settling:
            if self._writer is not None:
                await asyncio.shield(self._writer)
            if self._settling:
                await asyncio.wait(set(self._settling))

    def _wake(self) -> None:
        loop = asyncio.get_running_loop()
        writer = self._writer
        # NOTE: a writer of another event loop (a test client's previous one) is gone
        if writer is None or writer.done() or writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_all())

    async def _write_all(self) -> None:
        try:
            while self._rows or self._touches:
                rows, self._rows = self._rows[:MAX_BATCH], self._rows[MAX_BATCH:]
                touches, self._touches = self._touches, {}
                touched, self._touched = self._touched, []
                await self._write(rows, touches, touched)
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

    async def _write(
        self,
        rows: list[tuple[AuditEntry, asyncio.Future[bool]]],
        touches: dict[int, datetime],
        touched: list[asyncio.Future[None]],
    ) -> None:
        entries = [entry for entry, _ in rows]
        waiting: list[asyncio.Future[Any]] = [*(done for _, done in rows), *touched]
        try:
            refused = await self._record(entries, touches)
        except Exception as exc:
            _fail(waiting, exc, len(rows))
            return
        finally:
            self.batches += 1
        # NOTE: the next batch starts now; this one's requests are answered once the
        # database says its commit is on disk (at once where a commit waits for that)
        settling = asyncio.ensure_future(self._settle(rows, touched, refused))
        self._settling.add(settling)
        settling.add_done_callback(self._settling.discard)

    async def _record(self, entries: list[AuditEntry], touches: dict[int, datetime]) -> Refusals:
        if self.key_stops is None or not entries:
            return await self.store.record(entries, touches)
        async with self.key_stops.held() as stops:
            stopped = withdrawn(entries, stops)
            kept = [entry for entry in entries if entry.jti not in stopped]
            refused = await self.store.record(kept, touches)
        return Refusals(ended=refused.ended, withdrawn=refused.withdrawn | stopped)

    async def _settle(
        self,
        rows: list[tuple[AuditEntry, asyncio.Future[bool]]],
        touched: list[asyncio.Future[None]],
        refused: Refusals,
    ) -> None:
        try:
            await self.store.flushed()
        except Exception as exc:
            _fail([*(done for _, done in rows), *touched], exc, len(rows))
            return
        for entry, done in rows:
            if done.done():  # NOTE: its request was cancelled; the row stands
                continue
            state = refused.ended.get(entry.run_id)
            if state is None:
                done.set_result(entry.jti not in refused.withdrawn)
            else:
                done.set_exception(self.refusal(entry.run_id, state))
        for touch in touched:
            if not touch.done():
                touch.set_result(None)


def _fail(waiting: list[asyncio.Future[Any]], exc: Exception, rows: int) -> None:
    """No token of a batch whose commit (or flush) failed may leave."""
    error = exc if isinstance(exc, FederationError) else unavailable()
    log.error("audit batch of %d rows failed: %s", rows, type(exc).__name__)
    for done in waiting:
        if not done.done():
            done.set_exception(error)
