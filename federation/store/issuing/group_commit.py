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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from federation.errors import FederationError, ResourceUnavailable
from federation.store.issuing.port import AuditEntry, IssueStore

log = logging.getLogger("federation.store")

# Bounds one batch (bound parameters per statement stay far below any driver's limit).
MAX_BATCH = 256

Refusal = Callable[[str, str], FederationError]


def unavailable() -> ResourceUnavailable:
    return ResourceUnavailable("the database is unavailable", headers={"Retry-After": "1"})


class GroupCommit:
    """Batches audit rows and key touches onto one :class:`IssueStore`."""

    def __init__(self, store: IssueStore, refusal: Refusal) -> None:
        self.store = store
        self.refusal = refusal  # what a row whose run finished meanwhile answers
        self._rows: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self._touches: dict[int, datetime] = {}
        self._touched: list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._settling: set[asyncio.Future[None]] = set()
        self.batches = 0  # written so far (tests and benchmarks read it)

    async def record(self, entry: AuditEntry) -> None:
        """Return once ``entry`` is committed and on disk; raise what refused it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rows.append((entry, done))
        self._wake()
        await done

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
        rows: list[tuple[AuditEntry, asyncio.Future[None]]],
        touches: dict[int, datetime],
        touched: list[asyncio.Future[None]],
    ) -> None:
        entries = [entry for entry, _ in rows]
        waiting = [done for _, done in rows] + touched
        try:
            refused = await self.store.record(entries, touches)
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

    async def _settle(
        self,
        rows: list[tuple[AuditEntry, asyncio.Future[None]]],
        touched: list[asyncio.Future[None]],
        refused: dict[str, str],
    ) -> None:
        try:
            await self.store.flushed()
        except Exception as exc:
            _fail([done for _, done in rows] + touched, exc, len(rows))
            return
        for entry, done in rows:
            if done.done():  # NOTE: its request was cancelled; the row stands
                continue
            state = refused.get(entry.run_id)
            if state is None:
                done.set_result(None)
            else:
                done.set_exception(self.refusal(entry.run_id, state))
        for done in touched:
            if not done.done():
                done.set_result(None)


def _fail(waiting: list[asyncio.Future[None]], exc: Exception, rows: int) -> None:
    """No token of a batch whose commit (or flush) failed may leave."""
    error = exc if isinstance(exc, FederationError) else unavailable()
    log.error("audit batch of %d rows failed: %s", rows, type(exc).__name__)
    for done in waiting:
        if not done.done():
            done.set_exception(error)
