"""The databases a benchmark serves from, and the audit log it checks in them.

SQLite is a file in the configuration's temporary directory. PostgreSQL is a throwaway
database on the local server, created for one configuration and dropped after it, even
when the run fails. The audit check counts the audit table's rows (and the transparency
log's entries) through SQLAlchemy on the same URL as the server, so it sees what the
server committed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.pool import NullPool

from benchmarks.results import AuditCheck
from federation.store.models import IssuedToken, LogEntryRow

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'federation.db'}"


def postgres_available(admin_url: str = POSTGRES_ADMIN) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        with psycopg.connect(admin_url, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable: {str(exc).strip().splitlines()[0]}"


@contextmanager
def throwaway_postgres(admin_url: str = POSTGRES_ADMIN) -> Iterator[str]:
    """A new, empty database; yields its SQLAlchemy URL and drops it afterwards."""
    name = f"federation_bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class AuditLog:
    """Counts the rows of the audit table (one per issued token) and of the transparency
    log."""

    def __init__(self, database_url: str) -> None:
        self._engine: Engine = create_engine(database_url, poolclass=NullPool)

    def count(self) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(IssuedToken)).scalar_one()
            )

    def with_log_entries(self) -> tuple[int, int]:
        """The audit rows and the transparency log's entries, read in one statement (one
        snapshot): a token's row and entry commit together."""
        rows = select(func.count()).select_from(IssuedToken).scalar_subquery()
        entries = select(func.count()).select_from(LogEntryRow).scalar_subquery()
        with self._engine.connect() as connection:
            found = connection.execute(select(rows, entries)).one()
        return int(found[0]), int(found[1])

    def settled_count(self, *, interval: float = 0.1, deadline: float = 3.0) -> int:
        """The count once it stops moving: requests still in flight when the load
        generator stopped may commit a moment later."""
        last = self.count()
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            time.sleep(interval)
            current = self.count()
            if current == last:
                return current
            last = current
        return last

    def check(self, before: int, ok: int, in_flight: int, *, logged: bool) -> AuditCheck:
        """The rows grown since ``before`` (once settled) against ``ok`` answers, plus up
        to ``in_flight`` requests the load generator stopped waiting for; and the log's
        entries as many as the rows (``logged``) or none."""
        after = self.settled_count()
        grew = after - before
        rows, entries = self.with_log_entries()
        return AuditCheck(
            before=before,
            after=after,
            grew=grew,
            ok_answers=ok,
            connections=in_flight,
            log_entries=entries,
            logged=logged,
            ok=ok <= grew <= ok + in_flight and entries == (rows if logged else 0),
        )

    def close(self) -> None:
        self._engine.dispose()
