"""Fixtures shared by every suite: settings in a temporary directory, a migrated store,
a keyring, the application, PostgreSQL databases, and a real server process."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.keys.files import FileKeyStore
from federation.keys.signers import LocalSigner
from federation.registry.principals import bootstrap_admin
from federation.server.runtime import open_keyring
from federation.settings import Settings, load_settings
from federation.store import Store
from tests.support import LiveServer, World, start_server

START = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
TESTS = Path(__file__).resolve().parent
POSTGRES_ADMIN = os.environ.get(
    "FEDERATION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("FEDERATION_TEST_REDIS", "redis://127.0.0.1:6379/0")


# ---- markers: what a test needs, set here so that `-m` selects on them ----------------

# Tests that must not share the machine with each other: they measure time or CPU under
# load, or freeze a PostgreSQL of their own. With `--dist loadgroup` one worker runs them
# one after another (the other workers go on with the rest).
ALONE = "alone"
ALONE_TESTS = {
    "tests/bench/test_bench_smoke.py::test_smoke_run_writes_checked_results",
    "tests/integration/test_load.py::test_load_answers_every_request_and_audits_every_token",
    "tests/integration/test_database_freeze.py::"
    "test_a_frozen_database_answers_503_within_two_seconds_then_service_resumes",
    "tests/integration/test_graceful_stop.py::"
    "test_sigterm_finishes_the_requests_in_flight_then_exits_0",
}
# Directories whose every test is of a kind (path relative to tests/).
BY_DIRECTORY = {
    "integration": ("integration", "slow"),
    "bench": ("slow",),
    "cli": ("integration",),
    "exchange": ("integration",),
}
BROWSER_MODULES = {"console/test_browser.py"}
# Tests that take seconds each on their own (measured with --durations), outside the
# directories above.
SLOW_MODULES = {"console/test_browser.py", "api/test_schema_fuzz.py", "policy/test_round_trips.py"}
# Directories whose tests run without coverage's tracer (pytest-cov's ``no_cover``): the
# property tests spend their time in Hypothesis, which the tracer made twice as slow, on
# code that tests/unit and tests/policy reach line for line and branch for branch
# (compared in coverage's JSON reports when this was set), so the total does not move.
UNMEASURED = {"properties"}


def pytest_configure(config: pytest.Config) -> None:
    """A run started with SIGINT or SIGTERM ignored (``nohup``, a background job without
    job control) passes the ignoring on to every process a test starts, and a process
    that ignores the signal it is stopped with outlives its test. The processes that run
    tests (the xdist workers, or the one process of a run without them) take the default
    dispositions back, so that their children do; an xdist controller keeps the run's."""
    workers = getattr(config.option, "numprocesses", None)
    if not hasattr(config, "workerinput") and workers:
        return
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _uses_postgres(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    if "postgres_url" in names or "postgres_admin" in names:
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("database_url") == "postgres"


def _uses_module_fixture(item: pytest.Item) -> bool:
    """Whether a fixture of the test lives as long as its module (a server, a browser)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs and defs[-1].scope == "module" for defs in info.name2fixturedefs.values())


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks by where a test lives and what it uses: ``integration`` (real processes),
    ``browser`` (Chromium), ``postgres`` (the PostgreSQL server), ``slow``; and the
    ``xdist_group`` of the tests that run alone. With ``--dist loadgroup``, the tests of
    a module with a module-scoped fixture run on one worker, so that it is made once."""
    for item in items:
        path = item.path.relative_to(TESTS).as_posix()
        for name in BY_DIRECTORY.get(path.split("/", 1)[0], ()):
            item.add_marker(name)
        if path.split("/", 1)[0] in UNMEASURED:
            item.add_marker("no_cover")
        if path in BROWSER_MODULES:
            item.add_marker("browser")
        if path in SLOW_MODULES:
            item.add_marker("slow")
        if _uses_postgres(item) and item.get_closest_marker("postgres") is None:
            item.add_marker("postgres")
        if item.nodeid.split("[", 1)[0] in ALONE_TESTS:
            item.add_marker("slow")
            item.add_marker(pytest.mark.xdist_group(ALONE))
        elif _uses_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(path))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("FEDERATION_", "WARP_", "OZ_")):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    return load_settings(
        database_url=database_url or f"sqlite:///{tmp_path}/var/federation.db",
        keys_dir=tmp_path / "keys",
        admin_key_file=tmp_path / "var" / "admin-api-key",
        **{"console_secret_file": tmp_path / "var" / "console-secret", **overrides},
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database and a generated keyring, made once and copied per test:
    migrating and generating RSA keys for every test would dominate the suite."""
    base = tmp_path_factory.mktemp("templates")
    settings = make_settings(base)
    store = Store.from_url(settings.database_url)
    store.migrate()
    store.dispose()
    open_keyring(settings, ManualClock(START)).ensure()
    return base


@pytest.fixture
def store(settings: Settings, templates: Path, tmp_path: Path) -> Iterator[Store]:
    (tmp_path / "var").mkdir(mode=0o700, exist_ok=True)
    shutil.copy2(templates / "var" / "federation.db", tmp_path / "var" / "federation.db")
    store = Store.from_url(settings.database_url)
    store.check_schema()
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def template_signers(templates: Path) -> dict[str, LocalSigner]:
    """The template keyring's keys, parsed once: reading an RSA key file checks the key,
    which took half of the set-up of every test with an application."""
    files = FileKeyStore(templates / "keys")
    return {stored.record.kid: stored.signer for stored in files.load()}


@pytest.fixture
def keyring(
    settings: Settings,
    clock: ManualClock,
    templates: Path,
    template_signers: dict[str, LocalSigner],
) -> Keyring:
    shutil.copytree(templates / "keys", settings.keys_dir)
    keyring = open_keyring(settings, clock)
    assert isinstance(keyring.store, FileKeyStore)
    # The copy's files are the template's: their parsed keys are reused. The store still
    # reads its manifest and checks each key against it; new keys are read as usual.
    keyring.store._signers.update(template_signers)
    keyring.load()
    return keyring


@pytest.fixture
def app(settings: Settings, store: Store, keyring: Keyring, clock: ManualClock) -> FastAPI:
    return create_app(settings, store=store, keyring=keyring, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def admin_key(store: Store, clock: ManualClock) -> str:
    with store.session() as session:
        created = bootstrap_admin(session, clock.now())
    assert created is not None
    return created.raw


@pytest.fixture
def world(client: TestClient, admin_key: str) -> World:
    return World(client, admin_key)


# ---- PostgreSQL -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    try:
        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN} ({exc}); start it "
            "(.ci/run does) or point FEDERATION_TEST_POSTGRES at one"
        )
    return POSTGRES_ADMIN


class PostgresDatabases:
    """This worker's test databases, emptied and handed out again rather than dropped:
    on PostgreSQL 15, DROP DATABASE waits for a checkpoint (about a second here) and
    CREATE DATABASE copies one, where emptying the ``public`` schema takes milliseconds.
    Dropped together at the end of the session."""

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        self.free: list[str] = []
        self.made: list[str] = []

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        name = f"federation_test_{secrets.token_hex(6)}"
        with psycopg.connect(self.admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return name

    def give_back(self, name: str) -> None:
        """Empty ``name`` (ending whatever a test left connected to it) for the next
        test; drop it if that fails."""
        url = f"{self.admin.rsplit('/', 1)[0]}/{name}"
        try:
            with psycopg.connect(self.admin, autocommit=True) as connection:
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
                connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        except psycopg.Error:
            self.drop(name)
        else:
            self.free.append(name)

    def drop(self, name: str) -> None:
        with psycopg.connect(self.admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.remove(name)
        with contextlib.suppress(ValueError):
            self.free.remove(name)


@pytest.fixture(scope="session")
def postgres_databases(postgres_admin: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_admin)
    yield databases
    for name in list(databases.made):
        databases.drop(name)


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """An empty database for one test (no table, nothing connected to it)."""
    name = postgres_databases.take()
    yield f"{postgres_databases.base}/{name}"
    postgres_databases.give_back(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both backends: every test using this runs once on each."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/var/federation.db"
    return str(request.getfixturevalue("postgres_url"))


# ---- Redis ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc}); start it (.ci/run does) or "
            "point FEDERATION_TEST_REDIS at one"
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own in the shared Redis; its keys go afterwards."""
    prefix = f"federation-test:{secrets.token_hex(8)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        stale = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if stale:
            client.delete(*stale)
    finally:
        client.close()


# ---- a real server process ------------------------------------------------------------


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from start_server(tmp_path / "server", f"sqlite:///{tmp_path}/server/var/federation.db")


@pytest.fixture(scope="session")
def go_verifier() -> Path:
    """The Go verifier of the transparency log (``tests/transparency/goverify``), built
    once for every worker and run."""
    from tests.transparency import golang

    return golang.cached_build()
