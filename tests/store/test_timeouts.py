"""A stuck database answers within seconds: every wait on PostgreSQL is bounded, on the
server while it answers and on this side when it does not."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from federation.clock import ManualClock
from federation.errors import ResourceUnavailable
from federation.issuing.pipeline import IssueRequest
from federation.store import Store
from federation.store.deadlines import (
    SERVER_STATEMENT_TIMEOUT_MS,
    STATEMENT_DEADLINE,
    DatabaseBudget,
    charging,
    refuse_if_abandoned,
    unbounded,
)
from tests.seeding import seed
from tests.store.issuers import token_issuer

SERVER_TIMEOUT = SERVER_STATEMENT_TIMEOUT_MS / 1000


def test_a_run_locked_elsewhere_times_out_then_issuing_resumes(
    pg: Store, postgres_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    seeded = seed(pg, clock.now())
    issuer = token_issuer(pg, tmp_path, postgres_url, clock)
    request = IssueRequest(
        run_id="r1", audience="sts.amazonaws.com", workload_token=seeded.workload_token
    )
    # another session moves the run and does not commit: its row lock blocks issuing
    blocker = create_engine(postgres_url)
    try:
        with asyncio.Runner() as loop:
            try:
                caller = loop.run(issuer.authenticate(seeded.key))
                with blocker.connect() as held:
                    held.execute(text("SELECT 1 FROM runs WHERE run_id = 'r1' FOR UPDATE"))
                    started = time.monotonic()
                    with pytest.raises(ResourceUnavailable):  # answered as 503 by the API
                        loop.run(issuer.issue(caller, request))
                    waited = time.monotonic() - started
                    held.rollback()
                # the server cancels the lock wait; the client's deadline is the fallback
                assert SERVER_TIMEOUT - 0.5 <= waited <= STATEMENT_DEADLINE + 1
                issued = loop.run(issuer.issue(caller, request))  # no restart needed
                assert issued.claims.run_id == "r1"
            finally:
                loop.run(issuer.audit.drain())
                loop.run(issuer.store.close())
    finally:
        blocker.dispose()


def test_serving_connections_carry_the_statement_timeout(pg: Store) -> None:
    with pg.engine.connect() as connection:
        setting = connection.execute(
            text("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
        ).scalar()
    assert setting == str(SERVER_STATEMENT_TIMEOUT_MS)


def test_a_round_trip_past_its_deadline_is_cut_and_its_connection_discarded(pg: Store) -> None:
    with pg.engine.connect() as connection:
        first = connection.execute(text("SELECT pg_backend_pid()")).scalar()
    with pg.engine.connect() as connection:
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar() == first  # pooled
        # NOTE: as a server that stopped answering: it will not cancel this itself
        connection.execute(text("SET statement_timeout = 0"))
        started = time.monotonic()
        with pytest.raises(OperationalError) as cut:
            connection.execute(text("SELECT pg_sleep(10)"))
        waited = time.monotonic() - started
    assert cut.value.connection_invalidated
    assert STATEMENT_DEADLINE <= waited <= STATEMENT_DEADLINE + 1
    pg.ping()  # the next request is served at once, on a new connection
    with pg.engine.connect() as connection:
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar() != first


def test_a_migration_may_take_longer_than_a_request(pg: Store) -> None:
    with unbounded(), pg.engine.connect() as connection:
        connection.execute(text("SET statement_timeout = 0"))
        connection.execute(text("SELECT pg_sleep(:s)"), {"s": STATEMENT_DEADLINE + 0.3})
        connection.rollback()


def test_a_budget_charges_waits_once_however_nested() -> None:
    now = [0.0]
    budget = DatabaseBudget(1.0, clock=lambda: now[0])
    with budget.waiting():
        now[0] = 0.2
        with budget.waiting():  # a checkout that connects; or a second thread
            now[0] = 0.5
        now[0] = 0.6
        assert budget.remaining() == pytest.approx(0.4)
    now[0] = 5.0  # working, or waiting on something else: not charged
    assert budget.remaining() == pytest.approx(0.4)
    with budget.waiting():
        now[0] = 5.5
        assert budget.remaining() == pytest.approx(-0.1)


def test_a_request_already_answered_never_commits(store: Store) -> None:
    budget = DatabaseBudget()
    charging(budget).run(refuse_if_abandoned)  # still answering: nothing to refuse
    budget.abandon()
    with pytest.raises(ResourceUnavailable):
        charging(budget).run(refuse_if_abandoned)
    session = store.new_session()
    try:
        with pytest.raises(ResourceUnavailable):
            charging(budget).run(session.commit)
    finally:
        session.close()
