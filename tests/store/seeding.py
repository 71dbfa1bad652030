"""Rows for the store suites, made through the library as the API would make them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from federation.clock import ManualClock
from federation.domain.run_states import RunState
from federation.issuing.pipeline import TokenIssuer
from federation.registry import principals as accounts
from federation.registry.auth import Caller, authenticate
from federation.server.runtime import open_keyring
from federation.store import Store
from federation.store.issuing import issue_store
from tests.conftest import make_settings
from tests.seeding import seed_user_run


def admin_caller(store: Store, clock: ManualClock) -> Caller:
    with store.session() as session:
        created = accounts.bootstrap_admin(session, clock.now())
        assert created is not None
        return authenticate(session, created.raw, clock.now())


@dataclass(frozen=True)
class Seeded:
    """User ``u1`` (team ``t1``) with a federate key and run ``r1``."""

    admin: Caller
    key: str
    workload_token: str


def seed(store: Store, clock: ManualClock, state: RunState = RunState.INPROGRESS) -> Seeded:
    admin = admin_caller(store, clock)
    with store.session() as session:
        seeded = seed_user_run(
            session,
            admin,
            clock.now(),
            uid="u1",
            team="t1",
            environment="e1",
            run_id="r1",
            state=state,
        )
    return Seeded(admin=admin, key=seeded.key, workload_token=seeded.workload_token)


def token_issuer(
    store: Store, directory: Path, database_url: str, clock: ManualClock
) -> TokenIssuer:
    """The issuing pipeline on ``store``, with fresh keys in ``directory``."""
    settings = make_settings(directory, database_url)
    keyring = open_keyring(settings, clock)
    keyring.ensure()
    return TokenIssuer.from_settings(settings, issue_store(store), keyring, clock)
