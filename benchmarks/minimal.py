"""The "minimal issuer" baseline: issue-token's essential work and nothing else.

What the issuer cannot avoid doing for one token, written as plainly as Python allows
and served through :func:`federation.server.serving.run` exactly as the issuer and hello are:
a FastAPI route with a validated JSON body; the API key's SHA-256 looked up in the
database; the run read by its id; the workload token's hash compared in constant time;
an ES256 JWT signed with ``cryptography``; an audit row inserted, group-committed with
every row that arrived while the previous batch was being written, and on disk before
the token leaves (on SQLite the write-ahead log is flushed off the loop; on PostgreSQL
the commit is the flush). No scopes, rate limits, subject templates, key lifecycle,
access log, metrics, header limits or error format.

It calibrates the targets: its ratio to hello says how far a plain Python issuer on
this server setup gets at all, and issue-token's ratio to it what the issuer's own
features and structure cost.

``python -m benchmarks.minimal --port P --database PATH-OR-URL`` creates its tables in a
SQLite file or a PostgreSQL database (one key, one run: ``KEY``, ``RUN_ID``,
``WORKLOAD_TOKEN``) and serves until a signal. On PostgreSQL it reads through a
``psycopg_pool`` pool of asyncio connections and commits each batch on a connection of
its own, as the issuer does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

TARGET = "benchmarks.minimal:create_app"
PATH = "/issue"
DATABASE_VARIABLE = "MINIMAL_ISSUER_DATABASE"
KEY = "minimal-issuer-api-key"
RUN_ID = "run-minimal"
WORKLOAD_TOKEN = "wlt-minimal"  # noqa: S105 - the baseline's fixed test token
ISSUER = "https://issuer.example.com"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS minimal_keys (hash TEXT PRIMARY KEY, principal TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS minimal_runs (run_id TEXT PRIMARY KEY,"
    " principal TEXT NOT NULL, team TEXT NOT NULL, state TEXT NOT NULL,"
    " workload_hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS minimal_audit (jti TEXT PRIMARY KEY, run_id TEXT NOT NULL,"
    " subject TEXT NOT NULL, audience TEXT NOT NULL, issued_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL)",
)
KEY_QUERY = "SELECT principal FROM minimal_keys WHERE hash = %s"
RUN_QUERY = "SELECT principal, team, state, workload_hash FROM minimal_runs WHERE run_id = %s"
AUDIT_INSERT = "INSERT INTO minimal_audit VALUES (%s, %s, %s, %s, %s, %s)"


def _qmark(statement: str) -> str:
    """A statement in sqlite3's placeholder style."""
    return statement.replace("%s", "?")


SQLITE_KEY_QUERY, SQLITE_RUN_QUERY, SQLITE_AUDIT_INSERT = map(
    _qmark, (KEY_QUERY, RUN_QUERY, AUDIT_INSERT)
)
SEED = (
    ("INSERT INTO minimal_keys VALUES (%s, 'bench') ON CONFLICT DO NOTHING", "key"),
    (
        "INSERT INTO minimal_runs VALUES (%s, 'bench', 'platform', 'INPROGRESS', %s)"
        " ON CONFLICT DO NOTHING",
        "run",
    ),
)


class Body(BaseModel):
    run_id: str
    audience: str
    subject_template: list[str] | None = None
    requested_duration_seconds: int | None = None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _seed_values(name: str) -> tuple[str, ...]:
    return (_digest(KEY),) if name == "key" else (RUN_ID, _digest(WORKLOAD_TOKEN))


class SqliteBaseline:
    """Reads on the loop; each batch one transaction on the loop, then the write-ahead
    log flushed in a thread before the batch's tokens leave (the issuer's durability)."""

    def __init__(self, path: str) -> None:
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                connection.execute(statement)
            for statement, name in SEED:
                connection.execute(_qmark(statement), _seed_values(name))
        self._reader = sqlite3.connect(path, isolation_level=None)
        self._writer = sqlite3.connect(path, isolation_level=None)
        self._writer.execute("PRAGMA synchronous=NORMAL")
        self._wal = path + "-wal"
        self._thread = ThreadPoolExecutor(1)

    async def open(self) -> None:
        return None

    async def key_and_run(self, digest: str, run_id: str) -> tuple[Any, Any]:
        key = self._reader.execute(SQLITE_KEY_QUERY, (digest,)).fetchone()
        run = self._reader.execute(SQLITE_RUN_QUERY, (run_id,)).fetchone()
        return key, run

    async def write(self, rows: list[tuple[Any, ...]]) -> None:
        self._writer.execute("BEGIN IMMEDIATE")
        self._writer.executemany(SQLITE_AUDIT_INSERT, rows)
        self._writer.execute("COMMIT")
        await asyncio.get_running_loop().run_in_executor(self._thread, self._flush)

    def _flush(self) -> None:
        descriptor = os.open(self._wal, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class PostgresBaseline:
    """psycopg's asyncio connections: reads from a pool, batches on one connection; a
    commit returns once it is on disk."""

    def __init__(self, url: str) -> None:
        from psycopg_pool import AsyncConnectionPool

        with psycopg.connect(url, autocommit=True) as connection:
            for statement in SCHEMA:
                connection.execute(statement)
            for statement, name in SEED:
                connection.execute(statement, _seed_values(name))
        self._url = url
        self._pool = AsyncConnectionPool(
            url, min_size=2, max_size=8, kwargs={"autocommit": True}, open=False
        )
        self._writer: psycopg.AsyncConnection[Any] | None = None

    async def open(self) -> None:
        await self._pool.open()
        self._writer = await psycopg.AsyncConnection.connect(self._url)

    async def key_and_run(self, digest: str, run_id: str) -> tuple[Any, Any]:
        async with self._pool.connection() as connection:
            key = await (await connection.execute(KEY_QUERY, (digest,))).fetchone()
            run = await (await connection.execute(RUN_QUERY, (run_id,))).fetchone()
        return key, run

    async def write(self, rows: list[tuple[Any, ...]]) -> None:
        assert self._writer is not None
        async with self._writer.cursor() as cursor:
            await cursor.executemany(AUDIT_INSERT, rows)
        await self._writer.commit()


Baseline = SqliteBaseline | PostgresBaseline


class Audit:
    """Rows handed over while a batch is written form the next batch; a request awaits
    the commit (and flush) of the batch that holds its row."""

    def __init__(self, database: Baseline) -> None:
        self._database = database
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._writing = False

    async def record(self, row: tuple[Any, ...]) -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._pending.append((row, done))
        if not self._writing:
            self._writing = True
            loop.call_soon(lambda: asyncio.ensure_future(self._write()))
        await done

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._database.write([row for row, _ in batch])
                for _, done in batch:
                    done.set_result(None)
        finally:
            self._writing = False


def baseline(database: str) -> Baseline:
    if database.startswith("postgresql"):
        return PostgresBaseline(database)
    return SqliteBaseline(database)


def create_app() -> FastAPI:
    database = baseline(os.environ[DATABASE_VARIABLE])
    audit = Audit(database)
    private_key = ec.generate_private_key(ec.SECP256R1())
    header = _b64(json.dumps({"alg": "ES256", "kid": "minimal", "typ": "JWT"}).encode())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await database.open()
        yield

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(PATH)
    async def issue(body: Body, request: Request) -> dict[str, Any]:
        authorization = request.headers.get("authorization", "")
        key, run = await database.key_and_run(_digest(authorization[7:]), body.run_id)
        if key is None:
            raise HTTPException(401)
        workload = request.headers.get("x-warp-ambient-workload-token", "")
        if run is None or run[0] != key[0] or run[2] != "INPROGRESS":
            raise HTTPException(404)
        if not hmac.compare_digest(run[3], _digest(workload)):
            raise HTTPException(401)
        now = int(time.time())
        expires = now + (body.requested_duration_seconds or 3600)
        jti = secrets.token_hex(16)
        subject = f"teams:{run[1]}/principal:{run[0]}"
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": body.audience,
            "iat": now,
            "nbf": now,
            "exp": expires,
            "jti": jti,
        }
        signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(
            private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        token = f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
        await audit.record((jti, body.run_id, subject, body.audience, now, expires))
        return {"token": token, "expires_at": expires, "issuer": ISSUER}

    return app


def main(argv: list[str] | None = None) -> None:
    from federation.server import serving

    parser = argparse.ArgumentParser(prog="python -m benchmarks.minimal", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True, help="a SQLite file or a libpq URL")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ[DATABASE_VARIABLE] = args.database
    serving.run(TARGET, host="127.0.0.1", port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
