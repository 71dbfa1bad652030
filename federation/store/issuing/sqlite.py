"""The issuing port on a SQLite file.

Everything but the flush to disk runs on the event loop: SQLite answers in microseconds
from this process, and a thread hop per statement costs more than the statement (worse:
a writer thread that takes and drops the GIL around each of its calls waits behind the
loop each time). Reads use a connection of their own. Each batch of the group commit is
one ``BEGIN IMMEDIATE`` transaction on a second connection, committed with
``synchronous=NORMAL`` (no flush); then the write-ahead log is flushed (``fsync``, about
2 ms here) in a thread, in one call, while the loop goes on reading and signing; only
then are the batch's tokens returned: ``FULL``'s guarantee. ``BEGIN IMMEDIATE`` never
waits in SQLite's busy handler on the loop: while another writer holds the database it
is tried again every half millisecond, up to the statement deadline.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Dialect

from federation.domain.run_states import FINISHED
from federation.store.database import Store, database_path
from federation.store.deadlines import STATEMENT_DEADLINE
from federation.store.issuing.compiled import DirectStatement, translated
from federation.store.issuing.group_commit import unavailable
from federation.store.issuing.log_append import LogStatements
from federation.store.issuing.port import (
    AUDIT_COLUMNS,
    CALLER_QUERY,
    LAST_USED_UPDATE,
    PRINCIPAL_QUERY,
    RUN_QUERY,
    AuditEntry,
    Refusals,
    audit_insert,
    key_stops_query,
    run_states_query,
    stops_of,
    withdrawn,
)

T = TypeVar("T")
BUSY_POLL = 0.0005  # seconds between looks at a database another writer holds
# Batches between checkpoints (a batch adds a few pages to the log; SQLite's own
# automatic checkpoint comes at 1,000 pages)
CHECKPOINT_BATCHES = 256


class BatchStatements:
    """The statements of one batch, compiled once per row count."""

    def __init__(self, dialect: Dialect, *, share_lock: bool) -> None:
        self.dialect = dialect
        self.touch = DirectStatement(LAST_USED_UPDATE, dialect)
        self._states = functools.lru_cache(maxsize=64)(
            lambda n: DirectStatement(run_states_query(n, share_lock=share_lock), dialect)
        )
        self._insert = functools.lru_cache(maxsize=64)(
            lambda n: DirectStatement(audit_insert(n), dialect)
        )
        self._stops = functools.lru_cache(maxsize=8)(
            lambda n: DirectStatement(key_stops_query(n, share_lock=share_lock), dialect)
        )

    def states(self, run_ids: Sequence[str]) -> tuple[DirectStatement, Any]:
        statement: DirectStatement = self._states(len(run_ids))
        return statement, statement.parameters(
            {f"run_{i}": run_id for i, run_id in enumerate(run_ids)}
        )

    def stops(self, kids: Sequence[str]) -> tuple[DirectStatement, Any]:
        statement: DirectStatement = self._stops(len(kids))
        return statement, statement.parameters({f"kid_{i}": kid for i, kid in enumerate(kids)})

    def withdrawn(
        self, entries: Sequence[AuditEntry], statement: DirectStatement, rows: Sequence[Any]
    ) -> frozenset[str]:
        """The jtis of ``entries`` whose key the rows of :meth:`stops` say is stopped."""
        return withdrawn(entries, stops_of([statement.row(row) for row in rows]))

    def insert(
        self, entries: Sequence[AuditEntry], indexes: Mapping[str, int]
    ) -> tuple[DirectStatement, Any]:
        """The audit rows of ``entries``, each with its log entry's index (``indexes``,
        by jti; none where the log is off)."""
        statement: DirectStatement = self._insert(len(entries))
        values: dict[str, Any] = {}
        for i, entry in enumerate(entries):
            row = entry.values
            for name in AUDIT_COLUMNS:
                values[f"{name}_{i}"] = row[name]
            values[f"log_idx_{i}"] = indexes.get(entry.jti)
        return statement, statement.parameters(values)


def _began(connection: Any) -> bool:
    """``BEGIN IMMEDIATE``: True once this connection holds the write lock, False while
    another writer does."""
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False
        raise
    return True


def _flush(wal: str) -> None:
    """fsync the write-ahead log, where the batch's commit was written."""
    try:
        descriptor = os.open(wal, os.O_RDONLY)
    except FileNotFoundError:  # NOTE: checkpointed and removed: the data is in the database
        descriptor = os.open(wal.removesuffix("-wal"), os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def refused_runs(run_ids: Sequence[str], states: Mapping[str, str]) -> dict[str, str]:
    """The runs of a batch whose rows may not be inserted: finished, or gone (``""``)."""
    refused = {}
    for run_id in run_ids:
        state = states.get(run_id, "")
        if not state or state in FINISHED:
            refused[run_id] = state
    return refused


class SqliteIssueStore:
    dialect = "sqlite"

    def __init__(self, store: Store) -> None:
        self._store = store
        self._dialect = store.engine.dialect
        self._caller = DirectStatement(CALLER_QUERY, self._dialect)
        self._run = DirectStatement(RUN_QUERY, self._dialect)
        self._principal = DirectStatement(PRINCIPAL_QUERY, self._dialect)
        self._batch = BatchStatements(self._dialect, share_lock=False)
        self._log = LogStatements(self._dialect, lock=False)
        self._reader: Any = None
        self._writer: Any = None
        self._thread: ThreadPoolExecutor | None = None
        self._committed = 0  # batches committed by this process
        self._synced = 0  # of which known to be on disk
        self._syncing: asyncio.Future[None] | None = None
        self._checkpointer: Any = None
        self._checkpointed = 0  # batches committed at the last checkpoint
        path = database_path(str(store.engine.url))
        self._wal = None if path is None or path.endswith(":memory:") else path + "-wal"

    async def caller(self, digest: str) -> Any:
        return self._first(self._caller, {"digest": digest})

    async def run(self, run_id: str) -> Any:
        return self._first(self._run, {"run_id": run_id})

    async def principal(self, uid: str) -> Any:
        return self._first(self._principal, {"uid": uid})

    async def caller_and_run(self, digest: str, run_id: str) -> tuple[Any, Any]:
        return self._first(self._caller, {"digest": digest}), self._first(
            self._run, {"run_id": run_id}
        )

    async def record(
        self, entries: Sequence[AuditEntry], touches: Mapping[int, datetime]
    ) -> Refusals:
        connection = self._writing()
        deadline = time.monotonic() + STATEMENT_DEADLINE
        while not self._guarded("BEGIN IMMEDIATE", lambda: _began(connection)):
            # NOTE: another writer holds the database: look again soon, without
            # blocking the loop in SQLite's busy handler
            if time.monotonic() >= deadline:
                raise unavailable()
            await asyncio.sleep(BUSY_POLL)
        refused = self._guarded("BATCH", lambda: self._transaction(connection, entries, touches))
        self._committed += 1
        return refused

    async def flushed(self) -> None:
        # NOTE: committed with synchronous=NORMAL, then flushed here: FULL's guarantee
        # (on disk before any token of the batch leaves), with the flush off the loop and
        # shared by every batch committed while the previous flush ran
        if self._wal is None:
            return
        wanted = self._committed
        loop = asyncio.get_running_loop()
        while self._synced < wanted:
            syncing = self._syncing
            # NOTE: a flush of another event loop (a test client's previous one) is gone
            if syncing is None or syncing.done() or syncing.get_loop() is not loop:
                syncing = self._syncing = asyncio.ensure_future(self._sync())
            await asyncio.shield(syncing)

    async def _sync(self) -> None:
        covered = self._committed  # NOTE: every commit so far; none after this point
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="federation-flush")
        await asyncio.get_running_loop().run_in_executor(self._thread, self._flush)
        self._synced = max(self._synced, covered)

    def _flush(self) -> None:
        """In the flush thread: fsync the log; now and then, a checkpoint."""
        assert self._wal is not None
        _flush(self._wal)
        if self._committed - self._checkpointed >= CHECKPOINT_BATCHES:
            self._checkpointed = self._committed
            if self._checkpointer is None:
                self._checkpointer = self._store.engine.raw_connection()
            # NOTE: PASSIVE: never waits for readers or writers, and gives way to them
            self._checkpointer.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def ping(self) -> None:
        self._guarded("SELECT 1", lambda: self._connection().execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        for connection in (self._reader, self._writer, self._checkpointer):
            if connection is not None:
                connection.close()
        self._reader = self._writer = self._checkpointer = None

    def _first(self, statement: DirectStatement, values: dict[str, Any]) -> Any:
        parameters = statement.parameters(values)
        raw = self._guarded(
            statement.sql,
            lambda: self._connection().execute(statement.sql, parameters).fetchone(),
        )
        return statement.row(raw)

    def _connection(self) -> Any:
        if self._reader is None:
            self._reader = self._store.engine.raw_connection()
        return self._reader.driver_connection

    def _writing(self) -> Any:
        if self._writer is None:
            self._writer = self._store.engine.raw_connection()
            connection = self._writer.driver_connection
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=0")
            # NOTE: a checkpoint copies the log into the database and flushes both: tens
            # of milliseconds that must not stall the loop; the flush thread runs them
            connection.execute("PRAGMA wal_autocheckpoint=0")
        return self._writer.driver_connection

    def _transaction(
        self, connection: Any, entries: Sequence[AuditEntry], touches: Mapping[int, datetime]
    ) -> Refusals:
        """The batch, in the transaction ``BEGIN IMMEDIATE`` opened: the database's write
        lock is held, so no run can end, and no signing key be stopped, between the reads
        and the commit."""
        cursor = connection.cursor()
        try:
            run_ids = list(dict.fromkeys(entry.run_id for entry in entries))
            refused: dict[str, str] = {}
            stopped: frozenset[str] = frozenset()
            if run_ids:
                statement, parameters = self._batch.states(run_ids)
                cursor.execute(statement.sql, parameters)
                refused = refused_runs(run_ids, dict(cursor.fetchall()))
                statement, parameters = self._batch.stops(
                    list(dict.fromkeys(entry.kid for entry in entries))
                )
                cursor.execute(statement.sql, parameters)
                stopped = self._batch.withdrawn(entries, statement, cursor.fetchall())
            kept = [
                entry
                for entry in entries
                if entry.run_id not in refused and entry.jti not in stopped
            ]
            if kept:
                change = None
                if any(entry.logged is not None for entry in kept):
                    log = self._log
                    cursor.execute(log.head.sql, log.head_parameters())
                    change = log.appended(cursor.fetchone(), kept)
                statement, parameters = self._batch.insert(kept, change.indexes if change else {})
                cursor.execute(statement.sql, parameters)
                for sql, values in self._log.writes(change) if change else ():
                    cursor.execute(sql, values)
            touch = self._batch.touch
            for key_seq, now in touches.items():
                cursor.execute(touch.sql, touch.parameters({"key_seq": key_seq, "now": now}))
            with self._store.write_lock.held():
                connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            cursor.close()
        return Refusals(ended=refused, withdrawn=stopped)

    def _guarded(self, sql: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except self._dialect.loaded_dbapi.Error as exc:
            raise translated(self._dialect, exc, sql) from None
