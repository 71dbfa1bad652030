"""Fixtures shared by every suite: settings in a temporary directory, a migrated store,
a keyring, the application, PostgreSQL databases, and a real server process."""

from __future__ import annotations

import os
import secrets
import shutil
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
from federation.registry.principals import bootstrap_admin
from federation.server.runtime import open_keyring
from federation.settings import Settings, load_settings
from federation.store import Store
from tests.support import LiveServer, World, start_server

START = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
POSTGRES_ADMIN = os.environ.get(
    "FEDERATION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("FEDERATION_TEST_REDIS", "redis://127.0.0.1:6379/0")


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


@pytest.fixture
def keyring(settings: Settings, clock: ManualClock, templates: Path) -> Keyring:
    shutil.copytree(templates / "keys", settings.keys_dir)
    keyring = open_keyring(settings, clock)
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


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"federation_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(postgres_admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
