"""503 resource_unavailable and 500 internal_error through HTTP: an empty keyring, a
database that is down, and a key store whose signer fails."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import FileKeyStore, KeyRecord, Keyring, KeyStore, LocalSigner
from federation.keys.jwk import PublicKey
from federation.settings import Settings
from federation.store import Store
from tests.api.test_errors import AWS, ISSUE, assert_problem, audit_rows
from tests.support import World, bearer

DOWN_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens on port 1
MARKER = "hsm-slot-7-pin-0451"


def keyring_on(store: KeyStore, settings: Settings, clock: ManualClock) -> Keyring:
    keyring = Keyring(
        store,
        clock,
        verification_window=settings.verification_window,
        lead_time=timedelta(seconds=settings.key_lead_time),
    )
    keyring.load()
    return keyring


@pytest.fixture
def serve() -> Iterator[list[TestClient]]:
    """Opens clients on extra applications and closes them after the test."""
    clients: list[TestClient] = []
    yield clients
    for client in clients:
        client.__exit__(None, None, None)


def open_client(clients: list[TestClient], app: FastAPI) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    clients.append(client)
    return client


# ---- 503 resource_unavailable ---------------------------------------------------------


def test_readyz_without_signing_keys(
    settings: Settings,
    store: Store,
    clock: ManualClock,
    tmp_path: Path,
    world: World,
    serve: list[TestClient],
) -> None:
    agent = world.agent()
    empty = keyring_on(FileKeyStore(tmp_path / "no-keys"), settings, clock)
    # NOTE: without scheduled rotation: its first round would publish a key into the
    # empty store at start-up, racing the requests below
    unscheduled = settings.model_copy(update={"key_rotation_period": 0})
    client = open_client(serve, create_app(unscheduled, store=store, keyring=empty, clock=clock))
    ready = client.get("/readyz")
    problem = assert_problem(ready, 503, "resource_unavailable", retryable=True, detail="ES256")
    assert "RS256" in problem["detail"]
    refused = client.post(
        ISSUE, json={"run_id": agent.run_id, "audience": AWS}, headers=agent.headers()
    )
    assert_problem(refused, 503, "resource_unavailable", retryable=True, detail="signing key")
    assert audit_rows(world) == []
    assert world.client.get("/readyz").status_code == 200  # the same store, with keys


@pytest.fixture
def down(
    settings: Settings, keyring: Keyring, clock: ManualClock, serve: list[TestClient]
) -> Iterator[TestClient]:
    store = Store.from_url(DOWN_DATABASE)
    try:
        yield open_client(serve, create_app(settings, store=store, keyring=keyring, clock=clock))
    finally:
        store.dispose()


@pytest.mark.parametrize("endpoint", ["whoami", "issue"])
def test_database_down_is_retryable(world: World, down: TestClient, endpoint: str) -> None:
    agent = world.agent()  # a real key and run, in the store that is up
    if endpoint == "whoami":
        response = down.get("/api/v1/whoami", headers=bearer(agent.key))
    else:
        body = {"run_id": agent.run_id, "audience": AWS}
        response = down.post(ISSUE, json=body, headers=agent.headers())
    problem = assert_problem(response, 503, "resource_unavailable", retryable=True)
    assert "database" in problem["detail"]
    assert DOWN_DATABASE not in response.text
    assert "127.0.0.1:1" not in response.text
    assert int(response.headers["Retry-After"]) >= 1


def test_readyz_with_the_database_down(down: TestClient) -> None:
    response = down.get("/readyz")
    problem = assert_problem(response, 503, "resource_unavailable", retryable=True)
    assert "store" in problem["detail"]
    assert "127.0.0.1:1" not in response.text


# ---- 500 internal_error ---------------------------------------------------------------


class ExplodingSigner:
    """Publishes a real public key, but signing fails with a plain exception."""

    def __init__(self) -> None:
        self._inner = LocalSigner(ec.generate_private_key(ec.SECP256R1()))

    @property
    def kid(self) -> str:
        return self._inner.kid

    @property
    def alg(self) -> str:
        return self._inner.alg

    @property
    def public_key(self) -> PublicKey:
        return self._inner.public_key

    def sign(self, signing_input: bytes) -> bytes:
        raise RuntimeError(f"lost the HSM session at /srv/hsm/{MARKER}")


@dataclass(frozen=True)
class StoredKey:
    record: KeyRecord
    signer: ExplodingSigner


class ExplodingKeyStore:
    """A :class:`KeyStore` holding one ES256 key whose signer fails."""

    def __init__(self, created_at: datetime) -> None:
        signer = ExplodingSigner()
        record = KeyRecord(
            kid=signer.kid, alg=signer.alg, created_at=created_at, activates_at=created_at
        )
        self.key = StoredKey(record=record, signer=signer)

    def version(self) -> Hashable | None:
        return 1

    def load(self) -> list[StoredKey]:
        return [self.key]

    def create(self, alg: str, *, created_at: datetime, activates_at: datetime) -> StoredKey:
        raise NotImplementedError(alg)

    def create_if(
        self, plan: Callable[[list[KeyRecord]], datetime | None], alg: str, *, created_at: datetime
    ) -> StoredKey | None:
        raise NotImplementedError(alg)

    def update(
        self,
        kid: str,
        *,
        activates_at: datetime | None = None,
        retired_at: datetime | None = None,
        revoked_at: datetime | None = None,
    ) -> KeyRecord:
        raise NotImplementedError(kid)


def test_unexpected_exception_is_a_bare_internal_error(
    settings: Settings, store: Store, clock: ManualClock, world: World, serve: list[TestClient]
) -> None:
    agent = world.agent()
    keys = ExplodingKeyStore(clock.now())
    keyring = keyring_on(keys, settings, clock)
    client = open_client(serve, create_app(settings, store=store, keyring=keyring, clock=clock))
    published = client.get("/.well-known/jwks.json").json()["keys"]
    assert [jwk["kid"] for jwk in published] == [keys.key.record.kid]  # only signing fails
    response = client.post(
        ISSUE, json={"run_id": agent.run_id, "audience": AWS}, headers=agent.headers()
    )
    assert_problem(response, 500, "internal_error", retryable=True, detail=None)
    for leak in (MARKER, "/srv/hsm", "RuntimeError", "HSM", "Traceback", 'File "', "line "):
        assert leak not in response.text
    assert audit_rows(world) == []  # nothing was issued, so nothing was audited
