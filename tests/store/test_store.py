"""The store suite: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from federation.clock import ManualClock
from federation.domain.run_states import RunState
from federation.errors import (
    AuthenticationRequired,
    ConfigurationError,
    Conflict,
    InvalidRequest,
    OperationNotSupported,
    ResourceNotFound,
    ResourceUnavailable,
)
from federation.issuing.minting import IssuedToken
from federation.issuing.pipeline import IssueRequest
from federation.registry import principals as accounts
from federation.registry import runs
from federation.registry.auth import authenticate
from federation.store import PageRequest, Store
from federation.store.models import ApiKey, Base, Principal, Run
from federation.store.models import IssuedToken as AuditRow
from tests.seeding import admin_caller, seed
from tests.store.issuers import token_issuer


def test_a_new_database_has_no_schema_until_migrated(database_url: str) -> None:
    store = Store.from_url(database_url)
    try:
        with pytest.raises(ConfigurationError, match="federation init"):
            store.check_schema()
        store.migrate()
        store.migrate()  # idempotent
        store.check_schema()
        assert store.revision() is not None
        tables = set(inspect(store.engine).get_table_names())
        assert {"principals", "api_keys", "runs", "issued_tokens"} <= tables
    finally:
        store.dispose()


def test_migrations_build_exactly_the_models(db: Store) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_times_come_back_aware_and_equal(db: Store) -> None:
    moment = datetime(2026, 11, 28, 23, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-5)))
    with db.session() as session:
        accounts.create_principal(
            session, type="user", uid="u1", email=None, display_name=None, teams=["t1"], now=moment
        )
    with db.session() as session:
        principal = accounts.get_principal(session, "u1")
    assert principal.created_at.tzinfo is not None
    assert principal.created_at == moment
    assert principal.created_at.utcoffset() == timedelta(0)


def test_a_naive_time_is_refused(db: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"), db.session() as session:
        accounts.create_principal(
            session,
            type="user",
            uid="u1",
            email=None,
            display_name=None,
            teams=[],
            now=datetime(2026, 1, 1),
        )


def test_principals_are_unique(db: Store, clock: ManualClock) -> None:
    with db.session() as session:
        accounts.create_principal(
            session,
            type="user",
            uid="u1",
            email="a@example.com",
            display_name="A",
            teams=["t1"],
            now=clock.now(),
        )
    with pytest.raises(Conflict) as caught, db.session() as session:
        accounts.create_principal(
            session, type="user", uid="u1", email=None, display_name=None, teams=[], now=clock.now()
        )
    assert caught.value.retryable is False
    with pytest.raises(ResourceNotFound), db.session() as session:
        accounts.get_principal(session, "nobody")


def test_api_keys_are_stored_only_as_hashes(db: Store, clock: ManualClock) -> None:
    caller = admin_caller(db, clock.now())
    with db.session() as session:
        accounts.create_principal(
            session, type="user", uid="u1", email=None, display_name=None, teams=[], now=clock.now()
        )
        created = accounts.create_api_key(
            session,
            caller,
            name="ci",
            type="personal",
            principal_uid="u1",
            scopes=["federate"],
            expires_in="1d",
            now=clock.now(),
        )
    with db.engine.connect() as connection:
        dumped = repr(connection.execute(text("SELECT * FROM api_keys")).all())
    assert created.raw not in dumped
    assert created.raw[3:] not in dumped
    with db.session() as session:
        assert authenticate(session, created.raw, clock.now()).principal_uid == "u1"
        assert session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == created.row.id))
    clock.advance(timedelta(days=1))
    with pytest.raises(AuthenticationRequired), db.session() as session:
        authenticate(session, created.raw, clock.now())


def test_deleting_a_key_takes_effect_at_once(db: Store, clock: ManualClock) -> None:
    caller = admin_caller(db, clock.now())
    with db.session() as session:
        created = accounts.create_api_key(
            session,
            caller,
            name="second",
            type="agent",
            principal_uid=accounts.BOOTSTRAP_PRINCIPAL,
            scopes=["federate"],
            expires_in="never",
            now=clock.now(),
        )
    with db.session() as session:
        authenticate(session, created.raw, clock.now())
        accounts.delete_api_key(session, caller, created.row.id, clock.now())
    with pytest.raises(AuthenticationRequired), db.session() as session:
        authenticate(session, created.raw, clock.now())


def test_runs_register_once_and_finish_for_good(db: Store, clock: ManualClock) -> None:
    caller = admin_caller(db, clock.now())
    with db.session() as session:
        accounts.create_principal(
            session,
            type="user",
            uid="u1",
            email=None,
            display_name=None,
            teams=["t1"],
            now=clock.now(),
        )
        registered = runs.register_run(
            session,
            caller,
            run_id="r1",
            principal_uid="u1",
            team_uid="t1",
            environment="e1",
            agent_name=None,
            skill_spec=None,
            host=None,
            state=RunState.QUEUED,
            now=clock.now(),
        )
    with db.engine.connect() as connection:
        assert registered.workload_token not in repr(
            connection.execute(text("SELECT * FROM runs")).all()
        )
    with pytest.raises(Conflict), db.session() as session:
        runs.register_run(
            session,
            caller,
            run_id="r1",
            principal_uid="u1",
            team_uid=None,
            environment=None,
            agent_name=None,
            skill_spec=None,
            host=None,
            state=RunState.QUEUED,
            now=clock.now(),
        )
    with db.session() as session:
        runs.set_run_state(session, caller, "r1", RunState.SUCCEEDED, clock.now())
    with pytest.raises(OperationNotSupported), db.session() as session:
        runs.set_run_state(session, caller, "r1", RunState.INPROGRESS, clock.now())
    with db.session() as session:
        assert runs.get_run(session, "r1").state == RunState.SUCCEEDED


def test_pages_are_newest_first_without_gaps_or_repeats(db: Store, clock: ManualClock) -> None:
    with db.session() as session:
        for number in range(45):
            clock.advance(timedelta(seconds=1))
            accounts.create_principal(
                session,
                type="user",
                uid=f"u{number:02d}",
                email=None,
                display_name=None,
                teams=[],
                now=clock.now(),
            )
    seen: list[str] = []
    cursor = None
    sizes = []
    with db.session() as session:
        while True:
            page = accounts.list_principals(session, PageRequest(limit=20, cursor=cursor))
            sizes.append(len(page.items))
            seen += [principal.uid for principal in page.items]
            if not page.has_next_page:
                break
            cursor = page.next_cursor
    assert sizes == [20, 20, 5]
    assert seen == [f"u{number:02d}" for number in reversed(range(45))]
    with pytest.raises(InvalidRequest, match="cursor"), db.session() as session:
        accounts.list_principals(session, PageRequest(limit=20, cursor="not-a-cursor"))


def test_issuing_writes_one_audit_row_and_no_token(
    db: Store, clock: ManualClock, tmp_path: Path, database_url: str
) -> None:
    issuer = token_issuer(db, tmp_path, database_url, clock)
    seeded = seed(db, clock.now())
    wanted = IssueRequest(
        run_id="r1",
        audience="sts.amazonaws.com",
        workload_token=seeded.workload_token,
        trace_id="abc",
    )

    async def issue() -> IssuedToken:
        try:
            return await issuer.issue(await issuer.authenticate(seeded.key), wanted)
        finally:
            await issuer.store.close()

    issued = asyncio.run(issue())
    with db.session() as session:
        rows = session.scalars(select(AuditRow)).all()
        assert [
            (
                row.jti,
                row.run_id,
                row.principal_uid,
                row.subject,
                row.audience,
                row.kid,
                row.trace_id,
            )
            for row in rows
        ] == [(issued.claims.jti, "r1", "u1", "user:u1", "sts.amazonaws.com", issued.kid, "abc")]
        assert rows[0].expires_at - rows[0].issued_at == timedelta(hours=1)
    with db.engine.connect() as connection:
        dumped = repr(connection.execute(text("SELECT * FROM issued_tokens")).all())
    assert issued.token not in dumped
    assert issued.token.split(".")[2] not in dumped


def test_an_unreachable_database_is_unavailable_not_an_internal_error() -> None:
    store = Store.from_url("postgresql+psycopg://postgres@127.0.0.1:1/none")
    try:
        with pytest.raises(ResourceUnavailable) as caught:
            store.ping()
        assert caught.value.retryable
    finally:
        store.dispose()


def test_unsupported_and_malformed_urls_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="unsupported database"):
        Store.from_url("mysql://root@127.0.0.1/test")
    with pytest.raises(ConfigurationError, match="not a database URL"):
        Store.from_url("not a url at all")


def test_sqlite_runs_in_wal_mode_in_a_private_directory(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path}/fresh/var/federation.db")
    try:
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert stat.S_IMODE((tmp_path / "fresh" / "var").stat().st_mode) == 0o700
    finally:
        store.dispose()


def test_foreign_keys_hold(db: Store, clock: ManualClock) -> None:
    orphan = Run(
        run_id="r1",
        principal_uid="ghost",
        state="QUEUED",
        workload_token_hash="0" * 64,
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"), db.session() as session:
        session.add(orphan)
    with db.session() as session:
        assert session.scalar(select(Principal).where(Principal.uid == "ghost")) is None
