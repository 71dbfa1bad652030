"""On PostgreSQL, no token is issued for a run whose end is being committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from federation import accounts, runs
from federation.auth import authenticate
from federation.clock import ManualClock
from federation.errors import FederationError, OperationNotSupported
from federation.issuance import IssueRequest, TokenIssuer
from federation.run_states import RunState
from federation.runtime import open_keyring
from federation.store import Store
from tests.conftest import make_settings


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Store]:
    store = Store.from_url(postgres_url)
    store.migrate()
    yield store
    store.dispose()


def test_issuance_waits_for_a_finishing_run_and_then_refuses(
    pg: Store, clock: ManualClock, tmp_path: Path, postgres_url: str
) -> None:
    settings = make_settings(tmp_path, postgres_url)
    keyring = open_keyring(settings, clock)
    keyring.ensure()
    issuer = TokenIssuer.from_settings(settings, keyring, clock)
    with pg.session() as session:
        admin = accounts.bootstrap_admin(session, clock.now())
        assert admin is not None
        caller = authenticate(session, admin.raw, clock.now())
        accounts.create_principal(
            session, type="user", uid="u1", email=None, display_name=None, teams=[], now=clock.now()
        )
        key = accounts.create_api_key(
            session,
            caller,
            name="k",
            type="personal",
            principal_uid="u1",
            scopes=["federate"],
            expires_in="1d",
            now=clock.now(),
        )
        run = runs.register_run(
            session,
            caller,
            run_id="r1",
            principal_uid="u1",
            team_uid=None,
            environment=None,
            agent_name=None,
            skill_spec=None,
            host=None,
            state=RunState.INPROGRESS,
            now=clock.now(),
        )

    finishing = pg.new_session()
    runs.set_run_state(finishing, caller, "r1", RunState.SUCCEEDED, clock.now())  # not committed
    outcome: list[object] = []
    started = threading.Event()

    def issue() -> None:
        with pg.session() as session:
            agent = authenticate(session, key.raw, clock.now())
            started.set()
            try:
                outcome.append(
                    issuer.issue(
                        session,
                        agent,
                        IssueRequest(
                            run_id="r1",
                            audience="sts.amazonaws.com",
                            workload_token=run.workload_token,
                        ),
                    )
                )
            except FederationError as error:
                outcome.append(error)

    worker = threading.Thread(target=issue)
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
