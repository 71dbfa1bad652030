"""A real server with ``FEDERATION_TRUSTED_PROXIES=127.0.0.1``: connections from
127.0.0.1 play the proxy (they send ``X-Forwarded-For``), connections from 127.0.0.2 a
client that reaches the server directly. A client whose bad keys spent its bucket still
gets its tokens, each client behind the proxy has its own bucket, and the direct
client's header neither gets it out of its own nor spends another's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import Agent, LiveServer, World, start_server

running = contextlib.contextmanager(start_server)
ISSUE = "/api/v1/federate/issue-token"
UNKNOWN_KEY = "wk-" + "A" * 43
CLIENT = "203.0.113.7"
OTHER = "198.51.100.9"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = {
        "FEDERATION_TRUSTED_PROXIES": "127.0.0.1",
        # NOTE: one token an hour: nothing refills while the test runs
        "FEDERATION_RATE_LIMIT_AUTH_FAILURES": "1/h,burst=3",
    }
    with running(tmp_path / "home", f"sqlite:///{tmp_path}/home/var/federation.db", settings) as s:
        yield s


@contextlib.contextmanager
def connecting_from(server: LiveServer, address: str) -> Iterator[httpx.Client]:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=server.url, transport=transport, timeout=10) as client:
        yield client


def issue(client: httpx.Client, agent: Agent, key: str, forwarded: str) -> int:
    headers = agent.headers(Authorization=f"Bearer {key}", **{"X-Forwarded-For": forwarded})
    body = {"run_id": agent.run_id, "audience": "sts.amazonaws.com"}
    return client.post(ISSUE, json=body, headers=headers).status_code


def test_the_lockout_behind_a_trusted_proxy_holds_the_failing_client_only(
    server: LiveServer,
) -> None:
    agent = World.live(server).agent("u1")
    with (
        connecting_from(server, "127.0.0.1") as proxy,
        connecting_from(server, "127.0.0.2") as direct,
    ):
        assert [issue(proxy, agent, UNKNOWN_KEY, CLIENT) for _ in range(3)] == [401] * 3
        answers = [
            (issue(proxy, agent, agent.key, CLIENT), issue(proxy, agent, UNKNOWN_KEY, CLIENT))
            for _ in range(16)
        ]
        assert answers == [(200, 429)] * 16
        assert issue(proxy, agent, UNKNOWN_KEY, OTHER) == 401
        # The direct client's failures are its own address's, whatever it claims...
        spoofed = [issue(direct, agent, UNKNOWN_KEY, OTHER) for _ in range(4)]
        assert spoofed == [401, 401, 401, 429]
        assert issue(direct, agent, UNKNOWN_KEY, "192.0.2.1") == 429
        assert issue(direct, agent, agent.key, "192.0.2.1") == 200
        # ...and the address it claimed kept its own: two failures left, then 429.
        assert [issue(proxy, agent, UNKNOWN_KEY, OTHER) for _ in range(3)] == [401, 401, 429]
