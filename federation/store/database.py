"""The database: engine set-up for SQLite and PostgreSQL, sessions, and migrations."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from federation._internal.files import create_private
from federation.errors import ConfigurationError, Conflict, ResourceUnavailable
from federation.store import deadlines
from federation.store.write_lock import NoWriteLock, WriteLock, write_lock

MIGRATIONS = Path(__file__).parent / "migrations"


class StoreSession(Session):
    """A session whose commits take the store's write lock (see ``write_lock``), and
    that never commits for a request already answered 503 (see ``deadlines``)."""

    def commit(self) -> None:
        deadlines.refuse_if_abandoned()
        lock: WriteLock = self.info["write_lock"]
        # NOTE: written first, the lock then: a session whose first write came at commit
        # would otherwise wait for SQLite's lock while holding ours, which another
        # writer holding SQLite's lock waits for (both gave up after busy_timeout)
        self.flush()
        with lock.held():
            super().commit()


class Store:
    """A database holding principals, API keys, runs and the token audit log."""

    def __init__(self, engine: Engine, lock: WriteLock | None = None) -> None:
        self.engine = engine
        self.write_lock = lock or NoWriteLock()
        self._sessions = sessionmaker(
            engine,
            class_=StoreSession,
            expire_on_commit=False,
            info={"write_lock": self.write_lock},
        )

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> Store:
        """Engine for ``url``; creates the directory of a SQLite file (mode 0700).
        With ``create=False`` a missing SQLite file is an error rather than a new one."""
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigurationError(
                f"FEDERATION_DATABASE_URL is not a database URL: {exc}"
            ) from None
        options: dict[str, Any] = {}
        lock: WriteLock = NoWriteLock()
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                path = Path(parsed.database)
                lock = write_lock(path)
                if not path.exists():
                    if not create:
                        raise ConfigurationError(
                            f"the database {path} does not exist; run `federation init`"
                        )
                    create_private(path)  # NOTE: 0600: key hashes, emails, the audit log
            options["connect_args"] = {"check_same_thread": False, "timeout": 5}
        elif parsed.get_backend_name() == "postgresql":
            # NOTE: every wait is bounded on this side (see ``deadlines``), so that a
            # down, frozen or partitioned database answers 503 within seconds rather
            # than holding requests: connecting, waiting for a pooled connection, and
            # every round trip; the server's statement_timeout is a second line.
            options["connect_args"] = deadlines.libpq_parameters()
            options["poolclass"] = deadlines.BudgetedPool
            options["pool_size"] = 10
            options["pool_timeout"] = deadlines.POOL_CHECKOUT
        else:
            raise ConfigurationError(
                f"unsupported database {parsed.get_backend_name()!r}: use sqlite:///PATH or "
                "postgresql+psycopg://USER@HOST/DB"
            )
        try:
            engine = create_engine(parsed, **options)
        except (ArgumentError, ImportError) as exc:
            raise ConfigurationError(f"cannot use FEDERATION_DATABASE_URL: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            event.listen(engine, "do_connect", deadlines.bounded_connect)
        return cls(engine, lock)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def new_session(self) -> Session:
        """A session whose owner commits; closing it rolls back what was not."""
        return self._sessions()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self) -> None:
        """Bring the schema to the newest revision (``federation init``)."""
        with deadlines.unbounded(), self._connect() as connection:
            if self.dialect == "postgresql":
                # NOTE: a migration may rewrite a large audit table: no statement timeout
                connection.execute(text("SET LOCAL statement_timeout = 0"))
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()

    def revision(self) -> str | None:
        with self._connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def check_schema(self) -> None:
        """Refuse to serve a database whose schema is older (or newer) than the code."""
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        current = self.revision()
        if current != head:
            state = "has no schema" if current is None else f"is at schema revision {current}"
            raise ConfigurationError(
                f"the database {state}, but this version of federation needs revision {head}; "
                "run `federation init` to migrate it"
            )

    def ping(self) -> None:
        with self._connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        try:
            with self.engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise ResourceUnavailable(
                f"the database is unavailable ({type(exc).__name__})"
            ) from exc


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # NOTE: FULL: a commit (a batch of audit rows) is on disk before its tokens leave
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def database_path(url: str) -> str | None:
    """The file of a SQLite URL, for messages; ``None`` for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return os.path.abspath(parsed.database)
    return None


def add_unique(session: Session, row: object, what: str) -> None:
    """Insert ``row`` now; a duplicate unique value is a (not retryable) Conflict.

    The whole unit of work is rolled back then: the request that wanted the row fails.
    """
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"{what} already exists", retryable=False) from None
