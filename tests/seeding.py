"""A user, a personal federate key and a run, made through the library as the API makes
them: for the store suites and the benchmarks, which have a store but no HTTP server.
Everything with an application or a live server seeds through ``tests.support.World``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from federation.domain.run_states import RunState
from federation.registry import principals as accounts
from federation.registry import runs
from federation.registry.auth import Caller, authenticate
from federation.store import Store


@dataclass(frozen=True)
class SeededRun:
    key: str  # the raw API key, as its holder has it
    run_id: str
    workload_token: str


def seed_user_run(
    session: Session,
    admin: Caller,
    now: datetime,
    *,
    uid: str,
    team: str,
    environment: str,
    run_id: str | None = None,
    state: RunState = RunState.INPROGRESS,
    agent_name: str | None = None,
    skill_spec: str | None = None,
    host: str | None = None,
) -> SeededRun:
    """User ``uid`` in ``team`` (email ``uid@example.com``), a one-day personal key with
    the federate scope, and a run of theirs in ``state``."""
    accounts.create_principal(
        session,
        type="user",
        uid=uid,
        email=f"{uid}@example.com",
        display_name=None,
        teams=[team],
        now=now,
    )
    key = accounts.create_api_key(
        session,
        admin,
        name=uid,
        type="personal",
        principal_uid=uid,
        scopes=["federate"],
        expires_in="1d",
        now=now,
    )
    run = runs.register_run(
        session,
        admin,
        run_id=run_id,
        principal_uid=uid,
        team_uid=team,
        environment=environment,
        agent_name=agent_name,
        skill_spec=skill_spec,
        host=host,
        state=state,
        now=now,
    )
    return SeededRun(key=key.raw, run_id=run.row.run_id, workload_token=run.workload_token)


def admin_caller(store: Store, now: datetime) -> Caller:
    """The bootstrap admin key's caller, as authentication makes it."""
    with store.session() as session:
        created = accounts.bootstrap_admin(session, now)
        assert created is not None
        return authenticate(session, created.raw, now)


@dataclass(frozen=True)
class Seeded:
    """User ``u1`` (team ``t1``) with a federate key and run ``r1``."""

    admin: Caller
    key: str
    workload_token: str


def seed(store: Store, now: datetime, state: RunState = RunState.INPROGRESS) -> Seeded:
    admin = admin_caller(store, now)
    with store.session() as session:
        seeded = seed_user_run(
            session, admin, now, uid="u1", team="t1", environment="e1", run_id="r1", state=state
        )
    return Seeded(admin=admin, key=seeded.key, workload_token=seeded.workload_token)
