"""API keys created per principal are limited (``FEDERATION_RATE_LIMIT_KEY_CREATION``):
past the burst, ``429`` problem+json with ``Retry-After``, until the bucket refills."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.errors import ConfigurationError
from federation.keys import Keyring
from federation.rate_limits import InProcessBuckets, Limits, Rate
from federation.settings import Settings
from federation.store import Store
from tests.conftest import make_settings
from tests.support import World, bearer

CREATE = "/api/v1/api-keys"
REFUSAL = "too many API keys created by this principal"


@pytest.fixture
def limited(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock, admin_key: str
) -> Iterator[World]:
    """The application with at most 3 keys at once, then one a minute, per principal,
    in buckets on the test's clock."""
    settings = make_settings(tmp_path, rate_limit_key_creation="1/m,burst=3")
    buckets = InProcessBuckets(now=lambda: clock.now().timestamp())
    limits = Limits.from_settings(settings, buckets=buckets)
    app = create_app(settings, store=store, keyring=keyring, clock=clock, limits=limits)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client, admin_key)


def create(world: World, key: str, **body: Any) -> httpx2.Response:
    payload = {"name": "copy", "type": "personal", "scopes": ["federate"], "expires_in": "1d"}
    response: httpx2.Response = world.client.request(
        "POST", CREATE, json={**payload, **body}, headers=bearer(key)
    )
    return response


def assert_limited(response: httpx2.Response, retry_after: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"] == retry_after
    body = response.json()
    assert body["status"] == 429
    assert body["retryable"] is True
    assert body["type"].endswith("/errors/resource-unavailable/")
    assert body["detail"] == f"{REFUSAL} (at most 1/m,burst=3)"


def keys_of(world: World, uid: str) -> int:
    listed = world.request("GET", "/api/v1/api-keys", params={"principal_uid": uid})
    assert listed.status_code == 200, listed.text
    return len(listed.json()["items"])


def test_a_principal_over_its_burst_gets_429_until_its_bucket_refills(
    limited: World, clock: ManualClock
) -> None:
    world = limited
    world.principal("u1")
    world.principal("u2")
    key = world.api_key("u1")  # the admin's principal spends its own bucket
    other = world.api_key("u2")
    copies = [create(world, key) for _ in range(3)]
    assert [response.status_code for response in copies] == [201, 201, 201]

    assert_limited(create(world, key), "60")
    # Per principal, not per key: the copies share their creator's bucket.
    assert_limited(create(world, copies[0].json()["key"]), "60")
    assert keys_of(world, "u1") == 4  # a refused request creates nothing
    # Another principal has a bucket of its own.
    assert create(world, other).status_code == 201

    clock.advance(timedelta(seconds=60))
    assert create(world, key).status_code == 201
    assert_limited(create(world, key), "60")


def test_the_admin_is_limited_too(limited: World) -> None:
    world = limited
    world.principal("u1")
    for _ in range(3):
        world.api_key("u1")
    body = {"principal_uid": "u1", "name": "more"}
    assert_limited(create(world, world.admin_key, **body), "60")


def test_the_key_creation_limit_is_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().rate_limit_key_creation == Rate(1, "s", burst=30)
    monkeypatch.setenv("FEDERATION_RATE_LIMIT_KEY_CREATION", "off")
    assert Settings().rate_limit_key_creation is None
    monkeypatch.setenv("FEDERATION_RATE_LIMIT_KEY_CREATION", "10/m,burst=5")
    assert Settings().rate_limit_key_creation == Rate(10, "m", burst=5)
    with pytest.raises(
        ConfigurationError, match="FEDERATION_RATE_LIMIT_KEY_CREATION: write a rate"
    ):
        make_settings(tmp_path, rate_limit_key_creation="lots")
