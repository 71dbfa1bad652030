"""A stuck database answers within seconds: every wait on PostgreSQL is bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from federation.clock import ManualClock
from federation.direct_issue import DirectIssue
from federation.issuance import IssueRequest
from federation.store import Store
from federation.store.database import TIMEOUT_SECONDS
from tests.store.seeding import seed, token_issuer


def test_a_run_locked_elsewhere_times_out_then_issuing_resumes(
    pg: Store, postgres_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    seeded = seed(pg, clock)
    direct = DirectIssue(pg, token_issuer(tmp_path, postgres_url, clock), clock)
    request = IssueRequest(
        run_id="r1", audience="sts.amazonaws.com", workload_token=seeded.workload_token
    )
    # another session moves the run and does not commit: its row lock blocks issuing
    blocker = create_engine(postgres_url)
    try:
        with blocker.connect() as held:
            held.execute(text("SELECT 1 FROM runs WHERE run_id = 'r1' FOR UPDATE"))
            started = time.monotonic()
            with pytest.raises(OperationalError):  # answered as 503 by the API
                direct(seeded.key, request)
            waited = time.monotonic() - started
            held.rollback()
        assert TIMEOUT_SECONDS - 1 <= waited <= TIMEOUT_SECONDS + 3
        assert direct(seeded.key, request).claims.run_id == "r1"  # no restart needed
    finally:
        blocker.dispose()


def test_serving_connections_carry_the_statement_timeout(pg: Store) -> None:
    with pg.engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "5s"
