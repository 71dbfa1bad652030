"""The issuing port on PostgreSQL, on the event loop (psycopg's asyncio connections in a
``psycopg_pool`` pool), so that concurrency is bounded by the pool, not by threads.

Every wait has a client-side deadline (``federation.store.deadlines``): a call's pool
checkout and round trips share :data:`STATEMENT_DEADLINE`, enforced in psycopg's own
wait loop; past it the connection is closed and the request answers ``503`` at once. The
pool replaces closed connections, so service resumes by itself when the database
answers again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Dialect

from federation.store.database import Store
from federation.store.deadlines import POOL_CHECKOUT, STATEMENT_DEADLINE, libpq_parameters
from federation.store.issuing.compiled import DirectStatement, translated
from federation.store.issuing.group_commit import unavailable
from federation.store.issuing.log_append import LogStatements
from federation.store.issuing.port import (
    CALLER_QUERY,
    PRINCIPAL_QUERY,
    RUN_QUERY,
    AuditEntry,
    Refusals,
)
from federation.store.issuing.sqlite import BatchStatements, refused_runs

T = TypeVar("T")

_WAIT_INTERVAL = 0.1  # psycopg's interval between looks for an interruption
POOL_MIN = 2
POOL_MAX = 8
# When the round trips of the current call must be done by (``time.monotonic()``).
_deadline: ContextVar[float | None] = ContextVar("issuing_deadline", default=None)


@cache
def _connection_class() -> type[Any]:
    # NOTE: built on first use: importing psycopg costs 0.1 s that SQLite never needs
    import psycopg
    from psycopg import errors

    class DeadlineConnection(psycopg.AsyncConnection[Any]):
        """Every round trip gives up at the current call's deadline, in psycopg's own
        wait loop (no task to cancel: cancelling one makes psycopg ask a server that may
        not answer to cancel the query, for up to 10 s). The connection is closed then,
        because its protocol exchange was abandoned half way, and the pool replaces it."""

        async def wait(
            self, gen: Any, interval: float = _WAIT_INTERVAL, timeout: float | None = None
        ) -> Any:
            if timeout is not None:  # psycopg's own bounded waits
                return await super().wait(gen, interval, timeout)
            deadline = _deadline.get()
            left = STATEMENT_DEADLINE if deadline is None else deadline - time.monotonic()
            try:
                return await super().wait(gen, interval, max(left, 0.001))
            # NOTE: psycopg's documented wait timeout (a private name; a test pins it)
            except errors._WaitTimeout:
                await self.close()
                raise psycopg.OperationalError(
                    "the database did not answer in time; the connection was closed"
                ) from None

    return DeadlineConnection


class PostgresIssueStore:
    dialect = "postgresql"

    def __init__(self, store: Store, *, min_size: int = POOL_MIN, max_size: int = POOL_MAX) -> None:
        self._dialect: Dialect = store.engine.dialect
        url = store.engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._sizes = (min_size, max_size)
        self._caller = DirectStatement(CALLER_QUERY, self._dialect)
        self._run = DirectStatement(RUN_QUERY, self._dialect)
        self._principal = DirectStatement(PRINCIPAL_QUERY, self._dialect)
        self._batch = BatchStatements(self._dialect, share_lock=True)
        self._log = LogStatements(self._dialect, lock=True)
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def caller(self, digest: str) -> Any:
        return await self._first(self._caller, {"digest": digest})

    async def run(self, run_id: str) -> Any:
        return await self._first(self._run, {"run_id": run_id})

    async def caller_and_run(self, digest: str, run_id: str) -> tuple[Any, Any]:
        caller = self._caller.parameters({"digest": digest})
        run = self._run.parameters({"run_id": run_id})

        async def fetch(connection: Any) -> tuple[Any, Any]:
            # NOTE: both statements in one round trip (psycopg's pipeline mode)
            async with connection.pipeline():
                found = await connection.execute(self._caller.sql, caller, prepare=True)
                ran = await connection.execute(self._run.sql, run, prepare=True)
            return await found.fetchone(), await ran.fetchone()

        key, row = await self._with_connection(self._caller.sql, fetch)
        return self._caller.row(key), self._run.row(row)

    async def principal(self, uid: str) -> Any:
        return await self._first(self._principal, {"uid": uid})

    async def record(
        self, entries: Sequence[AuditEntry], touches: Mapping[int, datetime]
    ) -> Refusals:
        async def write(connection: Any) -> Refusals:
            async with connection.transaction():
                run_ids = list(dict.fromkeys(entry.run_id for entry in entries))
                refused: dict[str, str] = {}
                stopped: frozenset[str] = frozenset()
                head: Any = None
                if run_ids:
                    states, parameters = self._batch.states(run_ids)
                    stops, stop_parameters = self._batch.stops(
                        list(dict.fromkeys(entry.kid for entry in entries))
                    )
                    logging = any(entry.logged is not None for entry in entries)
                    # NOTE: the run states, the key stops and (the log on) the log's head,
                    # locked: one sequencer across replicas, in one round trip; the
                    # stops' and head's statements prepared (few texts)
                    async with connection.pipeline():
                        found = await connection.execute(states.sql, parameters)
                        keys = await connection.execute(stops.sql, stop_parameters, prepare=True)
                        if logging:
                            log = self._log
                            head_cursor = await connection.execute(
                                log.head.sql, log.head_parameters(), prepare=True
                            )
                    refused = refused_runs(run_ids, dict(await found.fetchall()))
                    stopped = self._batch.withdrawn(entries, stops, await keys.fetchall())
                    head = await head_cursor.fetchone() if logging else None
                kept = [
                    entry
                    for entry in entries
                    if entry.run_id not in refused and entry.jti not in stopped
                ]
                if kept:
                    if head is None:
                        statement, parameters = self._batch.insert(kept, {})
                        await connection.execute(statement.sql, parameters)
                    else:
                        change = self._log.appended(head, kept)
                        statement, parameters = self._batch.insert(kept, change.indexes)
                        # NOTE: the rows and the log's entries, hashes and head together
                        writes = [(statement.sql, parameters), *self._log.writes(change)]
                        async with connection.pipeline():
                            for sql, values in writes:
                                await connection.execute(sql, values)
                touch = self._batch.touch
                for key_seq, now in touches.items():
                    await connection.execute(
                        touch.sql, touch.parameters({"key_seq": key_seq, "now": now})
                    )
            return Refusals(ended=refused, withdrawn=stopped)

        return await self._with_connection("BATCH", write)

    async def flushed(self) -> None:
        """A commit returns once it is flushed (``synchronous_commit``, the default)."""

    async def ping(self) -> None:
        async def select_one(connection: Any) -> None:
            await connection.execute("SELECT 1")

        await self._with_connection("SELECT 1", select_one)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close(timeout=POOL_CHECKOUT)

    async def _first(self, statement: DirectStatement, values: dict[str, Any]) -> Any:
        parameters = statement.parameters(values)

        async def fetch(connection: Any) -> Any:
            cursor = await connection.execute(statement.sql, parameters, prepare=True)
            return await cursor.fetchone()

        return statement.row(await self._with_connection(statement.sql, fetch))

    async def _with_connection(self, sql: str, work: Callable[[Any], Awaitable[T]]) -> T:
        """``work`` on a pooled connection, checkout and round trips together bounded by
        :data:`STATEMENT_DEADLINE` (each round trip gets what is left of it)."""
        pool = await self._opened()
        token = _deadline.set(time.monotonic() + STATEMENT_DEADLINE)
        try:
            async with pool.connection(timeout=STATEMENT_DEADLINE) as connection:
                return await work(connection)
        except self._dialect.loaded_dbapi.Error as exc:
            if type(exc).__name__ == "PoolTimeout":
                raise unavailable() from None
            raise translated(self._dialect, exc, sql) from None
        finally:
            _deadline.reset(token)

    async def _opened(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is not loop:
            # NOTE: a pool lives on the event loop that opened it (a test client's
            # previous one is gone): its connections are left to be collected
            self._pool = None
        if self._pool is None:
            self._loop = loop
            from psycopg_pool import AsyncConnectionPool

            self._pool = AsyncConnectionPool(
                self._conninfo,
                connection_class=_connection_class(),
                kwargs={**libpq_parameters(), "autocommit": True},
                min_size=self._sizes[0],
                max_size=self._sizes[1],
                timeout=POOL_CHECKOUT,
                open=False,
            )
            await self._pool.open(wait=False)
        return self._pool
