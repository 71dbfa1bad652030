"""Bodies over the limit are refused before anything reads or parses them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.store import Store
from tests.conftest import make_settings
from tests.support import World

LIMIT = 2048


@pytest.fixture
def small(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, max_request_bytes=LIMIT)
    app = create_app(settings, store=store, keyring=keyring, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _chunks(data: bytes, size: int = 512) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _assert_too_large(response: httpx2.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/reference/api-and-sdk/troubleshooting/errors/invalid-request/"
    assert problem["status"] == 413
    assert str(LIMIT) in problem["detail"]
    assert len(problem["trace_id"]) == 32


def test_a_declared_oversized_body_is_refused_before_authentication(small: TestClient) -> None:
    body = json.dumps({"run_id": "r1", "audience": "a", "pad": "x" * LIMIT})
    response = small.post(
        "/api/v1/federate/issue-token", content=body, headers={"Content-Type": "application/json"}
    )
    _assert_too_large(response)


def test_a_streamed_oversized_body_is_refused(small: TestClient) -> None:
    body = json.dumps({"query": "x" * (LIMIT * 2)}).encode()
    response = small.post(
        "/graphql/v2", content=_chunks(body), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in {name.lower() for name in response.request.headers}
    _assert_too_large(response)


def test_a_streamed_body_within_the_limit_is_replayed_whole(
    small: TestClient, world: World
) -> None:
    agent = world.agent()
    body = json.dumps({"run_id": agent.run_id, "audience": "sts.amazonaws.com"}).encode()
    response = small.post(
        "/api/v1/federate/issue-token",
        content=_chunks(body, 16),
        headers={**agent.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["subject"] == "user:u1"


def test_the_default_limit_admits_normal_requests_and_refuses_a_megabyte(
    client: TestClient, world: World
) -> None:
    agent = world.agent()
    assert world.issue(agent).status_code == 200
    response = client.post(
        "/api/v1/principals", content=b"{" + b" " * (1024 * 1024) + b"}", headers=world.admin
    )
    assert response.status_code == 413
