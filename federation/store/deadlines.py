"""Client-side deadlines for every database wait.

``statement_timeout`` runs inside the server, so it cannot help when the server itself
stops answering (frozen, partitioned, its host gone): the client must give up on its
own. Every wait this process makes on PostgreSQL is bounded here, so that a hung
database answers ``503 resource_unavailable`` within :data:`REQUEST_BUDGET` seconds and
service resumes by itself once it answers again.

Three bounds free the thread and the connection that wait:

* connecting: libpq's ``connect_timeout`` (:func:`libpq_parameters`);
* a pooled connection: the pool's checkout timeout, :data:`POOL_CHECKOUT`;
* every round trip on an open connection (statement, commit, rollback): psycopg's own
  wait loop, given :data:`STATEMENT_DEADLINE` (:func:`bounded_connect`). A connection
  whose wait expires is closed at once, so the pool discards it rather than reusing a
  connection in an unknown state, and SQLAlchemy then replaces every older one.

The answer to the client is bounded separately: a request charges the time it waits
on the database to a :class:`DatabaseBudget`, and the HTTP layer answers 503 once the
budget is spent, even if a connect (at least 2 s in libpq) is still running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import Context, ContextVar, copy_context
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.pool import PoolProxiedConnection, QueuePool

from federation.errors import ResourceUnavailable

if TYPE_CHECKING:
    import psycopg
    from psycopg.abc import PQGen

# What a request may spend waiting on the database in all, before it answers 503: the
# promise to clients is 2 s, and the rest of the request needs some of that.
REQUEST_BUDGET = 1.5
# One round trip (statement, commit, rollback) on an open connection.
STATEMENT_DEADLINE = 1.5
# Waiting for a pooled connection when every one is busy.
POOL_CHECKOUT = 1.5
# Opening a connection (libpq's connect_timeout: whole seconds, at least 2).
CONNECT_TIMEOUT = 2
# Inside the server, below the client's deadline: while the server answers, a lock wait
# or a runaway statement is cancelled there, and the connection stays usable.
SERVER_STATEMENT_TIMEOUT_MS = 1400
# What a 503 for an unavailable database tells clients to wait before trying again.
RETRY_AFTER_SECONDS = 1

RV = TypeVar("RV")


def libpq_parameters() -> dict[str, Any]:
    """Connection parameters that bound libpq's own waits: connecting, and a peer that
    stops acknowledging (TCP keepalives and ``tcp_user_timeout``)."""
    return {
        "connect_timeout": CONNECT_TIMEOUT,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": int(STATEMENT_DEADLINE * 1000),
        "options": f"-c statement_timeout={SERVER_STATEMENT_TIMEOUT_MS}",
    }


class DatabaseBudget:
    """How long one request has waited on the database, from every thread working for
    it; a wait counts once however many are nested (a checkout that connects)."""

    def __init__(
        self, seconds: float = REQUEST_BUDGET, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._spent = 0.0
        self._waits = 0
        self._since = 0.0
        # Set once the client has been answered 503: the work goes on, but never commits.
        self.abandoned = False

    @contextmanager
    def waiting(self) -> Iterator[None]:
        with self._lock:
            self._waits += 1
            if self._waits == 1:
                self._since = self._clock()
        try:
            yield
        finally:
            with self._lock:
                self._waits -= 1
                if self._waits == 0:
                    self._spent += self._clock() - self._since

    def remaining(self) -> float:
        """Seconds left, the wait in progress included; zero or less when spent."""
        with self._lock:
            spent = self._spent + (self._clock() - self._since if self._waits else 0.0)
        return self.seconds - spent

    def abandon(self) -> None:
        self.abandoned = True


_budget: ContextVar[DatabaseBudget | None] = ContextVar("database_budget", default=None)
# The deadline of one round trip; None while a migration runs (it may rewrite a table).
_deadline: ContextVar[float | None] = ContextVar("statement_deadline", default=STATEMENT_DEADLINE)
# psycopg's interval between checks for Ctrl-C while it waits on the socket.
_WAIT_INTERVAL = 0.1


def charging(budget: DatabaseBudget) -> Context:
    """A copy of the current context in which database waits are charged to ``budget``
    (threads started from it inherit it, as the framework's worker threads do)."""
    context = copy_context()
    context.run(_budget.set, budget)
    return context


@contextmanager
def database_wait() -> Iterator[None]:
    """Marks a wait on the database, charged to the current request's budget if any."""
    budget = _budget.get()
    if budget is None:
        yield
        return
    with budget.waiting():
        yield


def refuse_if_abandoned() -> None:
    """Before a commit: a request whose client was already told 503 writes nothing, so
    that a retry of a 503 never finds the first attempt's rows."""
    budget = _budget.get()
    if budget is not None and budget.abandoned:
        raise ResourceUnavailable("the request was answered before it could commit")


@contextmanager
def unbounded() -> Iterator[None]:
    """Round trips in this block wait as long as the server takes: for migrations, which
    also lift the server's ``statement_timeout``. Connecting stays bounded."""
    token = _deadline.set(None)
    try:
        yield
    finally:
        _deadline.reset(token)


class BudgetedPool(QueuePool):
    """SQLAlchemy's queue pool, whose checkouts (connecting included) are charged to the
    request's budget; their own bound is the pool's ``timeout`` and ``connect_timeout``."""

    def connect(self) -> PoolProxiedConnection:
        with database_wait():
            return super().connect()


# NOTE: SQLAlchemy names a pool's logger after its class, which puts this one under
# ``federation``: its INFO lines (every dispose and invalidation) stay out of the
# service's log, as QueuePool's always did.
logging.getLogger(f"{__name__}.{BudgetedPool.__name__}").setLevel(logging.WARNING)


def bounded_connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """SQLAlchemy's ``do_connect`` hook: a psycopg connection whose every wait on the
    server is bounded by :data:`STATEMENT_DEADLINE`."""
    return _connection_class().connect(*cargs, **cparams)


@cache
def _connection_class() -> type[psycopg.Connection[Any]]:
    # NOTE: built on first use: importing psycopg costs 0.1 s that SQLite never needs
    import psycopg
    from psycopg import errors

    class BoundedConnection(psycopg.Connection[Any]):
        """Every round trip (``Connection.wait``: execute, fetch, commit, rollback) gives
        up after :data:`STATEMENT_DEADLINE`; the connection is closed then, because
        psycopg abandoned its protocol exchange half way."""

        def wait(
            self, gen: PQGen[RV], interval: float = _WAIT_INTERVAL, timeout: float | None = None
        ) -> RV:
            limit = _deadline.get()
            if timeout is not None or limit is None:
                # psycopg's own bounded waits (notifies), or a migration
                return super().wait(gen, interval, timeout)
            with database_wait():
                try:
                    return super().wait(gen, interval, limit)
                # NOTE: psycopg's documented wait timeout; the name is private, so a
                # test pins it (tests/store/test_timeouts.py)
                except errors._WaitTimeout:
                    self.close()
                    raise psycopg.OperationalError(
                        f"the database did not answer within {limit:g} s; the connection was closed"
                    ) from None

    return BoundedConnection
