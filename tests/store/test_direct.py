"""The hot path's direct statements against the ORM's answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import jwt
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from federation.auth import CALLER_QUERY, Caller, authenticate, caller_of, secret_hash
from federation.clock import ManualClock
from federation.direct_issue import DirectIssue
from federation.errors import AuthenticationRequired, NotAuthorized, ResourceNotFound
from federation.issuance import IssueRequest
from federation.runs import ISSUE_QUERY
from federation.store import Store
from federation.store.direct import DirectStatement, direct_connection
from federation.store.models import ApiKey, IssuedToken
from federation.store.write_lock import FileWriteLock
from tests.store.seeding import Seeded, seed, token_issuer


@pytest.fixture
def seeded(db: Store, clock: ManualClock) -> Seeded:
    return seed(db, clock)


def test_a_direct_row_equals_what_the_orm_reads(db: Store, seeded: Seeded) -> None:
    digest = secret_hash(seeded.key)
    statement = DirectStatement(CALLER_QUERY, db.engine.dialect)
    with direct_connection(db) as connection:
        direct = connection.first(statement, digest=digest)
    with db.session() as session:
        expected = session.execute(CALLER_QUERY, {"digest": digest}).one()
    assert tuple(direct) == tuple(expected)
    assert direct.expires_at.tzinfo is not None  # processed as the column type says
    assert direct.teams == ["t1"]  # JSON decoded, on SQLite too
    assert direct.principal_uid == "u1"


def test_a_missing_row_is_none(db: Store, seeded: Seeded) -> None:
    statement = DirectStatement(ISSUE_QUERY, db.engine.dialect)
    with direct_connection(db) as connection:
        assert connection.first(statement, run_id="no-such-run") is None


def test_direct_issue_checks_and_audits_as_the_orm_path(
    db: Store, seeded: Seeded, clock: ManualClock, tmp_path: Path, database_url: str
) -> None:
    issuer = token_issuer(tmp_path, database_url, clock)
    direct = DirectIssue(db, issuer, clock)
    request = IssueRequest(run_id="r1", audience="sts.amazonaws.com", workload_token="x")
    with pytest.raises(NotAuthorized):  # the wrong workload token, as the ORM path says
        direct(seeded.key, request)
    with pytest.raises(AuthenticationRequired):
        direct("wk-" + "A" * 43, request)
    with pytest.raises(ResourceNotFound):
        direct(seeded.key, IssueRequest(run_id="r9", audience="a", workload_token="x"))

    issued = direct(
        seeded.key,
        IssueRequest(
            run_id="r1",
            audience="sts.amazonaws.com",
            subject_template=["teams", "environment"],
            workload_token=seeded.workload_token,
        ),
    )
    signer, _ = issuer.keyring.signer("ES256", clock.now())
    claims = jwt.decode(
        issued.token,
        signer.public_key,
        algorithms=["ES256"],
        audience="sts.amazonaws.com",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["sub"] == "teams:t1/environment:e1"
    with db.session() as session:
        rows = session.scalars(select(IssuedToken)).all()
        last_used = session.scalar(select(ApiKey.last_used_at).where(ApiKey.principal_uid == "u1"))
    assert [(row.jti, row.subject, row.kid) for row in rows] == [
        (claims["jti"], claims["sub"], signer.kid)
    ]
    assert last_used == clock.now()


def test_a_deleted_key_is_refused_on_the_next_request(
    db: Store, seeded: Seeded, clock: ManualClock, tmp_path: Path, database_url: str
) -> None:
    direct = DirectIssue(db, token_issuer(tmp_path, database_url, clock), clock)
    request = IssueRequest(
        run_id="r1", audience="sts.amazonaws.com", workload_token=seeded.workload_token
    )
    direct(seeded.key, request)
    with db.session() as session:
        key = session.scalars(select(ApiKey).where(ApiKey.principal_uid == "u1")).one()
        key.deleted_at = clock.now()
    with pytest.raises(AuthenticationRequired):
        direct(seeded.key, request)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuedToken)) == 1


def test_the_orm_and_direct_callers_agree(db: Store, seeded: Seeded, clock: ManualClock) -> None:
    digest = secret_hash(seeded.key)
    with direct_connection(db) as connection:
        row = connection.first(DirectStatement(CALLER_QUERY, db.engine.dialect), digest=digest)
    with db.session() as session:
        caller = authenticate(session, seeded.key, clock.now())
    assert caller_of(row) == caller
    assert isinstance(caller, Caller)


def test_an_unreachable_database_is_an_operational_error() -> None:
    store = Store.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(OperationalError), direct_connection(store):
            pass
    finally:
        store.dispose()


def test_writers_queue_on_the_file_lock_across_descriptors(tmp_path: Path) -> None:
    path = tmp_path / "db.writer-lock"
    first, second = FileWriteLock(path), FileWriteLock(path)  # two open files, as two workers
    order: list[str] = []
    held = threading.Event()

    def hold() -> None:
        with first.held():
            held.set()
            time.sleep(0.2)
            order.append("first released")

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(5)
    with second.held():
        order.append("second acquired")
    holder.join(5)
    assert order == ["first released", "second acquired"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
