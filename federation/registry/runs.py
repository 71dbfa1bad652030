"""Runs: what a token is bound to, registered and moved by orchestrators.

Only a ``runs:write`` (or ``admin``) key registers a run and sets its attributes, and
without ``admin`` never for its own principal, so no principal can forge the
environment, skill or host that IAM policies trust in its tokens. Each run gets a
workload token, returned once and stored hashed: presenting it proves that a token
request comes from inside the run.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.domain.run_states import FINISHED, RunState
from federation.errors import (
    InvalidRequest,
    NotAuthorized,
    OperationNotSupported,
    ResourceNotFound,
)
from federation.registry.auth import Caller, new_workload_token, secret_hash
from federation.registry.principals import get_principal
from federation.store.database import add_unique
from federation.store.models import Run
from federation.store.pagination import Page, PageRequest, paginate

_ID_ALPHABET = string.ascii_letters + string.digits


def new_run_id() -> str:
    """22 characters of [A-Za-z0-9] (131 bits), the shape of Oz's ids."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


@dataclass(frozen=True)
class RegisteredRun:
    row: Run
    workload_token: str


def register_run(
    session: Session,
    caller: Caller,
    *,
    run_id: str | None,
    principal_uid: str,
    team_uid: str | None,
    environment: str | None,
    agent_name: str | None,
    skill_spec: str | None,
    host: str | None,
    state: RunState,
    now: datetime,
) -> RegisteredRun:
    _check_not_own(caller, principal_uid)
    principal = get_principal(session, principal_uid)
    if team_uid is not None and team_uid not in principal.teams:
        raise InvalidRequest(f"principal {principal_uid} is not a member of team {team_uid}")
    token = new_workload_token()
    run = Run(
        run_id=run_id or new_run_id(),
        principal_uid=principal_uid,
        team_uid=team_uid,
        environment=environment,
        agent_name=agent_name,
        skill_spec=skill_spec,
        host=host,
        state=state,
        workload_token_hash=secret_hash(token),
        created_by_key=caller.key_id,
        created_at=now,
        updated_at=now,
    )
    add_unique(session, run, f"run {run.run_id}")
    return RegisteredRun(row=run, workload_token=token)


def run_not_found(run_id: str) -> ResourceNotFound:
    return ResourceNotFound(f"run {run_id} not found")


def get_run(session: Session, run_id: str, *, lock: str | None = None) -> Run:
    """The run; ``lock="share"`` while issuing for it and ``"update"`` while moving it,
    so that no token is issued for a run whose end is being committed (PostgreSQL)."""
    statement = select(Run).where(Run.run_id == run_id)
    if lock is not None:
        statement = statement.with_for_update(read=lock == "share")
    run = session.scalar(statement)
    if run is None:
        raise run_not_found(run_id)
    return run


def _check_not_own(caller: Caller, principal_uid: str) -> None:
    if not caller.is_admin and principal_uid == caller.principal_uid:
        raise NotAuthorized(
            "without the 'admin' scope a key cannot register or move runs of its own "
            "principal: the run's attributes are what its tokens are trusted for"
        )


def list_runs(
    session: Session,
    page: PageRequest,
    *,
    state: RunState | None = None,
    principal_uid: str | None = None,
    environment: str | None = None,
) -> Page[Run]:
    statement = select(Run)
    if state is not None:
        statement = statement.where(Run.state == state)
    if principal_uid is not None:
        statement = statement.where(Run.principal_uid == principal_uid)
    if environment is not None:
        statement = statement.where(Run.environment == environment)
    return paginate(session, statement, Run.seq, page)


def set_run_state(
    session: Session, caller: Caller, run_id: str, state: RunState, now: datetime
) -> Run:
    run = get_run(session, run_id, lock="update")
    _check_not_own(caller, run.principal_uid)
    if run.state in FINISHED and run.state != state:
        raise OperationNotSupported(
            f"run {run_id} is {run.state}; a finished run cannot change state"
        )
    run.state = state
    run.updated_at = now
    session.flush()
    return run
