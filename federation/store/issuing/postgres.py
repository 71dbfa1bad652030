"""The issuing port on PostgreSQL, on the event loop (psycopg's asyncio connections in a
``psycopg_pool`` pool), so that concurrency is bounded by the pool, not by threads.

Every wait has a client-side deadline (``federation.store.deadlines``): pool checkout,
connecting, each statement and each commit. A statement past its deadline is abandoned
to a background task (psycopg then cancels it in the server, or closes the connection if
the server does not answer) and the request answers ``503`` at once; the pool replaces
connections that were closed, so service resumes by itself when the database answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Dialect

from federation.store.database import Store
from federation.store.deadlines import POOL_CHECKOUT, STATEMENT_DEADLINE, libpq_parameters
from federation.store.issuing.compiled import DirectStatement, translated
from federation.store.issuing.group_commit import unavailable
from federation.store.issuing.port import (
    CALLER_QUERY,
    PRINCIPAL_QUERY,
    RUN_QUERY,
    AuditEntry,
)
from federation.store.issuing.sqlite import BatchStatements, refused_runs

log = logging.getLogger("federation.store")
T = TypeVar("T")

POOL_MIN = 2
POOL_MAX = 8


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
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._abandoned: set[asyncio.Task[Any]] = set()

    async def caller(self, digest: str) -> Any:
        return await self._first(self._caller, {"digest": digest})

    async def run(self, run_id: str) -> Any:
        return await self._first(self._run, {"run_id": run_id})

    async def principal(self, uid: str) -> Any:
        return await self._first(self._principal, {"uid": uid})

    async def record(
        self, entries: Sequence[AuditEntry], touches: Mapping[int, datetime]
    ) -> dict[str, str]:
        async def write(connection: Any) -> dict[str, str]:
            async with connection.transaction():
                run_ids = list(dict.fromkeys(entry.run_id for entry in entries))
                refused: dict[str, str] = {}
                if run_ids:
                    statement, parameters = self._batch.states(run_ids)
                    cursor = await connection.execute(statement.sql, parameters)
                    refused = refused_runs(run_ids, dict(await cursor.fetchall()))
                kept = [entry for entry in entries if entry.run_id not in refused]
                if kept:
                    statement, parameters = self._batch.insert(kept)
                    await connection.execute(statement.sql, parameters)
                touch = self._batch.touch
                for key_seq, now in touches.items():
                    await connection.execute(
                        touch.sql, touch.parameters({"key_seq": key_seq, "now": now})
                    )
            return refused

        return await self._with_connection("BATCH", write)

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
        pool = await self._opened()

        async def bounded() -> T:
            async with pool.connection(timeout=POOL_CHECKOUT) as connection:
                return await work(connection)

        task = asyncio.ensure_future(bounded())
        try:
            done, _ = await asyncio.wait({task}, timeout=STATEMENT_DEADLINE)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            # NOTE: abandoned, not awaited: psycopg's own cancellation may wait seconds
            # for a server that does not answer; this request answers now.
            task.cancel()
            self._abandoned.add(task)
            task.add_done_callback(self._forget)
            log.error("database statement passed its deadline: %s", sql.split(" ", 1)[0])
            raise unavailable()
        try:
            return task.result()
        except self._dialect.loaded_dbapi.Error as exc:
            raise translated(self._dialect, exc, sql) from None
        except Exception as exc:
            if type(exc).__name__ == "PoolTimeout":
                raise unavailable() from None
            raise

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("abandoned database statement ended: %s", type(task.exception()).__name__)

    async def _opened(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is not loop:
            # NOTE: a pool lives on the event loop that opened it (a test client's
            # previous one is gone): its connections are left to be collected
            self._pool = None
        if self._pool is None:
            self._loop = loop
            from psycopg import AsyncConnection
            from psycopg_pool import AsyncConnectionPool

            self._pool = AsyncConnectionPool(
                self._conninfo,
                connection_class=AsyncConnection[Any],
                kwargs={**libpq_parameters(), "autocommit": True},
                min_size=self._sizes[0],
                max_size=self._sizes[1],
                timeout=POOL_CHECKOUT,
                open=False,
            )
            await self._pool.open(wait=False)
        return self._pool
