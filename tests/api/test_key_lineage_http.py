"""Through HTTP, on SQLite and PostgreSQL: keys created with a key while an admin
deletes it are deleted with it, and none of them authenticates afterwards (the
thousand-trial race on the library is in ``tests/store/test_key_lineage.py``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.registry.principals import bootstrap_admin
from federation.store import Store
from tests.conftest import make_settings
from tests.store.key_races import survivors
from tests.support import World, bearer

TRIALS = 20
CREATORS = 3  # clients creating keys with the doomed key, beside the admin deleting it
ATTEMPTS = 3  # creations each creator tries in a trial, until one is refused
WAIT = 30.0  # seconds a thread of a trial waits for the others, at most
COPY = {"name": "copy", "type": "personal", "scopes": ["federate"], "expires_in": "1d"}


@dataclass
class Served:
    world: World
    store: Store


@pytest.fixture
def served(
    tmp_path: Path,
    database_url: str,
    keyring: Keyring,
    clock: ManualClock,
) -> Iterator[Served]:
    """The application on ``database_url``, without the limits this race would hit."""
    settings = make_settings(
        tmp_path,
        database_url,
        rate_limit_key_creation="off",
        rate_limit_auth_failures="off",
    )
    store = Store.from_url(settings.database_url)
    try:
        store.migrate()
        with store.session() as session:
            created = bootstrap_admin(session, clock.now())
        assert created is not None
        app = create_app(settings, store=store, keyring=keyring, clock=clock)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Served(World(client, created.raw), store)
    finally:
        store.dispose()


@pytest.mark.slow
def test_keys_created_while_their_creator_is_deleted_are_deleted_with_it(
    served: Served,
) -> None:
    world = served.world
    world.principal("u1")
    minted: list[str] = []
    refused_after_deletion: list[int] = []
    lock = threading.Lock()

    def create(doomed: str, started: threading.Barrier) -> None:
        started.wait()
        for _ in range(ATTEMPTS):
            response = world.client.request(
                "POST", "/api/v1/api-keys", json=COPY, headers=bearer(doomed)
            )
            if response.status_code == 401:
                return
            assert response.status_code == 201, response.text
            with lock:
                minted.append(response.json()["key"])

    def delete(doomed: str, started: threading.Barrier) -> None:
        started.wait()
        key_id = world.client.request("GET", "/api/v1/whoami", headers=bearer(doomed))
        response = world.request("DELETE", f"/api/v1/api-keys/{key_id.json()['key']['id']}")
        assert response.status_code == 204, response.text
        refused_after_deletion.append(world.status_of(doomed))

    with ThreadPoolExecutor(CREATORS + 1) as pool:
        for _ in range(TRIALS):
            doomed = world.api_key("u1", expires_in="never")
            started = threading.Barrier(CREATORS + 1, timeout=WAIT)
            work = [pool.submit(create, doomed, started) for _ in range(CREATORS)]
            work.append(pool.submit(delete, doomed, started))
            for future in work:
                future.result(timeout=WAIT)

    assert refused_after_deletion == [401] * TRIALS
    assert survivors(served.store) == []
    assert [key for key in minted if world.status_of(key) != 401] == []
    assert minted  # the creators did mint keys before the deletions
