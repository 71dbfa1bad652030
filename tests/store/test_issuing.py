"""The issuing pipeline on its port, on SQLite and PostgreSQL: the port's rows equal the
ORM's, every check refuses as the API says, and audit rows are group-committed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import func, select

from federation.clock import ManualClock
from federation.domain.run_states import RunState
from federation.errors import (
    AuthenticationRequired,
    NotAuthorized,
    OperationNotSupported,
    ResourceNotFound,
    ResourceUnavailable,
)
from federation.issuing.pipeline import IssueRequest, TokenIssuer
from federation.registry import runs
from federation.registry.auth import Caller, authenticate, caller_of, secret_hash
from federation.store import Store
from federation.store.issuing import AuditEntry, GroupCommit, IssueStore, issue_store
from federation.store.issuing.port import CALLER_QUERY, RUN_QUERY, Refusals
from federation.store.models import ApiKey, IssuedToken
from federation.store.write_lock import FileWriteLock
from tests.seeding import Seeded, seed
from tests.store.issuers import token_issuer


@pytest.fixture
def seeded(db: Store, clock: ManualClock) -> Seeded:
    return seed(db, clock.now())


@pytest.fixture
def loop() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def issuer(
    db: Store, clock: ManualClock, tmp_path: Path, database_url: str, loop: asyncio.Runner
) -> Iterator[TokenIssuer]:
    issuer = token_issuer(db, tmp_path, database_url, clock)
    yield issuer
    loop.run(issuer.audit.drain())
    loop.run(issuer.store.close())


def _request(seeded: Seeded, **changes: Any) -> IssueRequest:
    wanted: dict[str, Any] = {
        "run_id": "r1",
        "audience": "sts.amazonaws.com",
        "workload_token": seeded.workload_token,
    }
    return IssueRequest(**{**wanted, **changes})


async def _issue(issuer: TokenIssuer, key: str, request: IssueRequest) -> Any:
    return await issuer.issue(await issuer.authenticate(key), request)


def _audited(db: Store) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(IssuedToken)) or 0)


def test_the_ports_rows_equal_what_the_orm_reads(
    db: Store, seeded: Seeded, issuer: TokenIssuer, clock: ManualClock, loop: asyncio.Runner
) -> None:
    digest = secret_hash(seeded.key)
    key = loop.run(issuer.store.caller(digest))
    run = loop.run(issuer.store.run("r1"))
    with db.session() as session:
        assert tuple(key) == tuple(session.execute(CALLER_QUERY, {"digest": digest}).one())
        assert tuple(run) == tuple(session.execute(RUN_QUERY, {"run_id": "r1"}).one())
        assert caller_of(key) == authenticate(session, seeded.key, clock.now())
    assert key.expires_at.tzinfo is not None  # processed as the column type says
    assert key.teams == ["t1"]  # JSON decoded, on SQLite too
    assert loop.run(issuer.store.run("no-such-run")) is None
    assert loop.run(issuer.store.caller(secret_hash("wk-" + "A" * 43))) is None


def test_the_pipeline_checks_signs_and_audits(
    db: Store, seeded: Seeded, issuer: TokenIssuer, clock: ManualClock, loop: asyncio.Runner
) -> None:
    with pytest.raises(NotAuthorized):  # the wrong workload token
        loop.run(_issue(issuer, seeded.key, _request(seeded, workload_token="x")))
    with pytest.raises(AuthenticationRequired):
        loop.run(_issue(issuer, "wk-" + "A" * 43, _request(seeded)))
    with pytest.raises(ResourceNotFound):
        loop.run(_issue(issuer, seeded.key, _request(seeded, run_id="r9")))
    assert _audited(db) == 0

    issued = loop.run(
        _issue(issuer, seeded.key, _request(seeded, subject_template=["teams", "environment"]))
    )
    signer, _ = issuer.minter.keyring.signer("ES256", clock.now())
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
    caller = loop.run(issuer.authenticate(seeded.key))
    assert [(row.jti, row.subject, row.kid, row.api_key_id) for row in rows] == [
        (claims["jti"], claims["sub"], signer.kid, caller.key_id)
    ]
    assert last_used == clock.now()


def test_a_refused_request_still_records_when_its_key_was_used(
    db: Store, seeded: Seeded, issuer: TokenIssuer, clock: ManualClock, loop: asyncio.Runner
) -> None:
    """The touch rides a batch of its own (no audit row): it is committed all the same."""
    with pytest.raises(NotAuthorized):
        loop.run(_issue(issuer, seeded.key, _request(seeded, workload_token="x")))
    with db.session() as session:
        last_used = session.scalar(select(ApiKey.last_used_at).where(ApiKey.principal_uid == "u1"))
    assert last_used == clock.now()
    assert _audited(db) == 0


def test_issue_token_reads_key_and_run_together_and_checks_in_order(
    db: Store, seeded: Seeded, issuer: TokenIssuer, loop: asyncio.Runner
) -> None:
    with pytest.raises(AuthenticationRequired):  # the key first, though the run is unknown
        loop.run(issuer.issue_for_key("wk-" + "A" * 43, _request(seeded, run_id="r9")))
    with pytest.raises(ResourceNotFound):
        loop.run(issuer.issue_for_key(seeded.key, _request(seeded, run_id="r9")))
    noted: list[Caller] = []
    issued = loop.run(issuer.issue_for_key(seeded.key, _request(seeded), noted.append))
    assert [caller.principal_uid for caller in noted] == ["u1"]
    assert issued.claims.run_id == "r1"
    assert _audited(db) == 1


def test_a_deleted_key_is_refused_on_the_next_request(
    db: Store, seeded: Seeded, issuer: TokenIssuer, clock: ManualClock, loop: asyncio.Runner
) -> None:
    loop.run(_issue(issuer, seeded.key, _request(seeded)))
    with db.session() as session:
        key = session.scalars(select(ApiKey).where(ApiKey.principal_uid == "u1")).one()
        key.deleted_at = clock.now()
    with pytest.raises(AuthenticationRequired):
        loop.run(_issue(issuer, seeded.key, _request(seeded)))
    assert _audited(db) == 1


def test_concurrent_requests_share_commits(
    db: Store, seeded: Seeded, issuer: TokenIssuer, loop: asyncio.Runner
) -> None:
    async def many() -> list[Any]:
        caller = await issuer.authenticate(seeded.key)
        before = issuer.audit.batches
        issued = await asyncio.gather(*(issuer.issue(caller, _request(seeded)) for _ in range(24)))
        assert issuer.audit.batches - before < len(issued)  # rows shared a commit
        return issued

    issued = loop.run(many())
    with db.session() as session:
        jtis = set(session.scalars(select(IssuedToken.jti)))
    assert jtis == {token.claims.jti for token in issued}


def test_a_lone_request_is_written_in_a_batch_of_its_own(
    seeded: Seeded, issuer: TokenIssuer, loop: asyncio.Runner
) -> None:
    caller = loop.run(issuer.authenticate(seeded.key))
    before = issuer.audit.batches
    loop.run(issuer.issue(caller, _request(seeded)))
    assert issuer.audit.batches == before + 1


class Delegating:
    """The real port, every call passed on: fakes override what they change."""

    def __init__(self, port: IssueStore) -> None:
        self.port = port
        self.dialect = port.dialect

    async def caller(self, digest: str) -> Any:
        return await self.port.caller(digest)

    async def run(self, run_id: str) -> Any:
        return await self.port.run(run_id)

    async def caller_and_run(self, digest: str, run_id: str) -> tuple[Any, Any]:
        return await self.caller(digest), await self.run(run_id)

    async def principal(self, uid: str) -> Any:
        return await self.port.principal(uid)

    async def record(
        self, entries: Sequence[AuditEntry], touches: Mapping[int, datetime]
    ) -> Refusals:
        return await self.port.record(entries, touches)

    async def flushed(self) -> None:
        await self.port.flushed()

    async def ping(self) -> None:
        await self.port.ping()

    async def close(self) -> None:
        await self.port.close()


class FailingFlushes(Delegating):
    """Every commit succeeds, every flush to disk fails (as a disk that went away)."""

    async def flushed(self) -> None:
        raise OSError("fsync: input/output error")


class FailingCommits(Delegating):
    """Every batch's commit fails (as a database that went away)."""

    async def record(
        self, entries: Sequence[AuditEntry], touches: Mapping[int, datetime]
    ) -> Refusals:
        raise OSError("connection lost during COMMIT")


@pytest.mark.parametrize(
    ("failing", "rows"),
    [
        (FailingCommits, 0),
        # committed, never answered: more rows than tokens, never fewer
        (FailingFlushes, 8),
    ],
)
def test_a_failed_commit_or_flush_fails_every_request_it_covers(
    db: Store,
    seeded: Seeded,
    issuer: TokenIssuer,
    loop: asyncio.Runner,
    failing: type[Delegating],
    rows: int,
) -> None:
    caller = loop.run(issuer.authenticate(seeded.key))
    issuer.audit = GroupCommit(failing(issuer.store), issuer.audit.refusal)

    async def many() -> list[Any]:
        requests = (issuer.issue(caller, _request(seeded)) for _ in range(8))
        return await asyncio.gather(*requests, return_exceptions=True)

    answers = loop.run(many())
    assert all(isinstance(answer, ResourceUnavailable) for answer in answers), answers
    assert all(answer.headers["Retry-After"] == "1" for answer in answers)
    assert _audited(db) == rows


class FinishingRuns(Delegating):
    """After each run read, the run ends (committed) elsewhere."""

    def __init__(self, port: IssueStore, db: Store, seeded: Seeded, clock: ManualClock) -> None:
        super().__init__(port)
        self.db, self.seeded, self.clock = db, seeded, clock

    async def run(self, run_id: str) -> Any:
        row = await self.port.run(run_id)
        with self.db.session() as session:
            runs.set_run_state(
                session, self.seeded.admin, run_id, RunState.CANCELLED, self.clock.now()
            )
        return row


def test_a_run_that_ends_before_the_commit_gets_no_token(
    db: Store, seeded: Seeded, issuer: TokenIssuer, clock: ManualClock, loop: asyncio.Runner
) -> None:
    caller = loop.run(issuer.authenticate(seeded.key))
    finishing = FinishingRuns(issuer.store, db, seeded, clock)
    issuer.store = finishing
    issuer.audit = GroupCommit(finishing, issuer.audit.refusal)
    with pytest.raises(OperationNotSupported, match="CANCELLED"):
        loop.run(issuer.issue(caller, _request(seeded)))
    assert _audited(db) == 0


def test_an_unreachable_database_is_unavailable(
    tmp_path: Path, clock: ManualClock, loop: asyncio.Runner
) -> None:
    store = Store.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none")
    port = issue_store(store)
    try:
        started = time.monotonic()
        with pytest.raises(ResourceUnavailable):
            loop.run(port.caller(secret_hash("wk-" + "A" * 43)))
        assert time.monotonic() - started < 5
    finally:
        loop.run(port.close())
        store.dispose()


def test_the_orm_and_the_pipeline_authenticate_alike(
    db: Store, seeded: Seeded, issuer: TokenIssuer, clock: ManualClock, loop: asyncio.Runner
) -> None:
    with db.session() as session:
        by_orm = authenticate(session, seeded.key, clock.now())
    by_pipeline = loop.run(issuer.authenticate(seeded.key))
    assert by_orm == by_pipeline
    assert isinstance(by_pipeline, Caller)


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
