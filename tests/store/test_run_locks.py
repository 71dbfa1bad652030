"""On PostgreSQL, no token is issued for a run whose end is being committed."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from federation.clock import ManualClock
from federation.domain.run_states import RunState
from federation.errors import FederationError, OperationNotSupported
from federation.issuing.pipeline import IssueRequest
from federation.registry import runs
from federation.store import Store
from tests.seeding import seed
from tests.store.issuers import token_issuer


def test_issuance_waits_for_a_finishing_run_and_then_refuses(
    pg: Store, clock: ManualClock, tmp_path: Path, postgres_url: str
) -> None:
    issuer = token_issuer(pg, tmp_path, postgres_url, clock)
    seeded = seed(pg, clock.now())

    finishing = pg.new_session()
    runs.set_run_state(
        finishing, seeded.admin, "r1", RunState.SUCCEEDED, clock.now()
    )  # not committed
    outcome: list[object] = []
    started = threading.Event()

    async def issue() -> None:
        try:
            agent = await issuer.authenticate(seeded.key)
            started.set()
            outcome.append(
                await issuer.issue(
                    agent,
                    IssueRequest(
                        run_id="r1",
                        audience="sts.amazonaws.com",
                        workload_token=seeded.workload_token,
                    ),
                )
            )
        except FederationError as error:
            outcome.append(error)
        finally:
            await issuer.store.close()

    worker = threading.Thread(target=asyncio.run, args=(issue(),))
    worker.start()
    try:
        assert started.wait(timeout=30)
        worker.join(timeout=1.0)
        assert worker.is_alive(), "issuance did not wait for the run's state change"
        finishing.commit()
    finally:
        finishing.close()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], OperationNotSupported)
