"""The failed-authentication lockout through HTTP: a blocked address's valid keys are
served while every other request from it gets the same 429 without its body being read;
behind trusted proxies each client has its own address, and a peer that is not one can
neither escape its address nor spend another's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.api.middleware.auth_failures import key_check
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.rate_limits import InProcessBuckets, Limits
from federation.store import Store
from federation.store.issuing import issue_store
from tests.conftest import make_settings
from tests.console.pages import csrf_token
from tests.support import Agent, World, bearer

ISSUE = "/api/v1/federate/issue-token"
WHOAMI = "/api/v1/whoami"
UNKNOWN_KEY = "wk-" + "A" * 43  # well-formed, so it is looked up, and unknown
PROXY = "10.0.0.2"  # inside FEDERATION_TRUSTED_PROXIES below
CLIENT = "203.0.113.7"
OTHER = "198.51.100.9"
LOCKOUT = "too many failed authentications from this address"

Peer = Callable[..., AbstractContextManager[World]]


@pytest.fixture
def buckets() -> InProcessBuckets:
    """Buckets on a clock of their own that never moves: spent tokens stay spent, even
    when a test moves the application's clock to expire a key."""
    return InProcessBuckets(now=lambda: 0.0)


@pytest.fixture
def at(
    tmp_path: Path,
    store: Store,
    keyring: Keyring,
    clock: ManualClock,
    admin_key: str,
    buckets: InProcessBuckets,
) -> Peer:
    """``at(peer)``: the application, as the TCP peer ``peer`` reaches it, with three
    failures per address and ``10.0.0.0/8`` trusted as proxies; every application of a
    test shares its store and its buckets."""

    @contextmanager
    def world(peer: str, **overrides: Any) -> Iterator[World]:
        settings = make_settings(
            tmp_path,
            rate_limit_auth_failures="1/m,burst=3",
            rate_limit_key="off",
            rate_limit_run="off",
            trusted_proxies="10.0.0.0/8",
            **overrides,
        )
        limits = Limits.from_settings(settings, buckets=buckets)
        app = create_app(settings, store=store, keyring=keyring, clock=clock, limits=limits)
        with TestClient(app, raise_server_exceptions=False, client=(peer, 50000)) as client:
            yield World(client, admin_key)

    return world


def issue(world: World, agent: Agent, key: str, **headers: str) -> int:
    body = {"run_id": agent.run_id, "audience": "sts.amazonaws.com"}
    sent = agent.headers(Authorization=f"Bearer {key}", **headers)
    return int(world.client.post(ISSUE, json=body, headers=sent).status_code)


def whoami(world: World, key: str, **headers: str) -> int:
    return int(world.client.get(WHOAMI, headers={**bearer(key), **headers}).status_code)


def test_valid_keys_are_served_from_an_address_whose_failures_spent_its_bucket(
    at: Peer,
) -> None:
    """Bad keys arrive from the address faster than its bucket refills (here it never
    does); the valid issue-token calls from the same address, between them, all get
    their token and the bad ones all get 429."""
    with at(CLIENT) as world:
        agent = world.agent("u1")
        assert [issue(world, agent, UNKNOWN_KEY) for _ in range(3)] == [401] * 3
        answers = [(issue(world, agent, agent.key), issue(world, agent, UNKNOWN_KEY))]
        for _ in range(15):
            answers.append((issue(world, agent, agent.key), issue(world, agent, UNKNOWN_KEY)))
        assert answers == [(200, 429)] * 16
        assert [whoami(world, agent.key) for _ in range(3)] == [200] * 3
        # Paths without a key stay open (a load balancer's health checks).
        assert world.client.get("/healthz").status_code == 200


def test_a_blocked_address_learns_nothing_from_its_refusals(at: Peer, clock: ManualClock) -> None:
    """Missing, malformed, unknown, expired and deleted keys, another scheme, and a body
    nothing could read: the one same 429 (but for its trace id). A valid key with the
    same unreadable body gets the body's own answer: the body is read only for it."""
    with at(CLIENT) as world:
        agent = world.agent("u1")
        deleted = world.api_key("u1")
        deleted_id = world.client.get(WHOAMI, headers=bearer(deleted)).json()["key"]["id"]
        expired = world.api_key("u1", expires_in="1d")
        assert world.request("DELETE", f"/api/v1/api-keys/{deleted_id}").status_code == 204
        clock.advance(timedelta(days=2))
        assert [whoami(world, key) for key in (UNKNOWN_KEY, deleted, expired)] == [401] * 3
        body = {"run_id": agent.run_id, "audience": "sts.amazonaws.com"}
        attempts = [
            {},
            bearer("wk-short"),
            bearer(UNKNOWN_KEY),
            bearer(deleted),
            bearer(expired),
            {"Authorization": f"Basic {agent.key}"},
            bearer(agent.key.lower()),
        ]
        problems = []
        for headers in attempts:
            answer = world.client.post(ISSUE, json=body, headers=headers)
            assert answer.status_code == 429, answer.text
            assert answer.headers["Retry-After"] == "60"
            problems.append({**answer.json(), "trace_id": None})
        unreadable = {**bearer(UNKNOWN_KEY), "Content-Type": "application/json"}
        answer = world.client.post(ISSUE, content=b"{not json", headers=unreadable)
        problems.append({**answer.json(), "trace_id": None})
        assert all(problem == problems[0] for problem in problems)
        assert LOCKOUT in problems[0]["detail"]
        valid = {**agent.headers(), "Content-Type": "application/json"}
        assert world.client.post(ISSUE, content=b"{not json", headers=valid).status_code == 400
        assert world.issue(agent).status_code == 200


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(at: Peer) -> None:
    with at(PROXY) as world:
        agent = world.agent("u1")

        def failed(forwarded: str) -> int:
            return whoami(world, UNKNOWN_KEY, **{"X-Forwarded-For": forwarded})

        assert [failed(CLIENT) for _ in range(3)] == [401] * 3
        assert failed(CLIENT) == 429
        # Another client behind the same proxy is not held to the first one's failures.
        assert failed(OTHER) == 401
        # What the client wrote itself, left of the proxy's entry, is not read...
        assert failed(f"{OTHER}, {CLIENT}") == 429
        # ...and trusted proxies are skipped, from the right.
        assert failed(f"{OTHER}, {CLIENT}, 10.9.8.7") == 429
        # Nothing a proxy writes: the proxy's own address, which has failed nothing.
        assert failed("not-an-address") == 401
        # The blocked client's valid key is served.
        assert issue(world, agent, agent.key, **{"X-Forwarded-For": CLIENT}) == 200


def test_a_peer_that_is_no_trusted_proxy_cannot_escape_or_frame_with_the_header(
    at: Peer,
) -> None:
    with at(PROXY) as proxy:
        agent = proxy.agent("u1")
    with at(CLIENT) as direct:
        # Its failures are its own, whatever address it claims...
        spoofed = [whoami(direct, UNKNOWN_KEY, **{"X-Forwarded-For": OTHER}) for _ in range(4)]
        assert spoofed == [401, 401, 401, 429]
        # ...so a new claim does not escape the lockout, and its valid key still works.
        assert whoami(direct, UNKNOWN_KEY, **{"X-Forwarded-For": "192.0.2.1"}) == 429
        assert issue(direct, agent, agent.key, **{"X-Forwarded-For": "192.0.2.1"}) == 200
    with at(PROXY) as proxy:
        # The address it claimed was not charged: OTHER has its three failures left.
        forwarded = {"X-Forwarded-For": OTHER}
        assert [whoami(proxy, UNKNOWN_KEY, **forwarded) for _ in range(4)] == [401] * 3 + [429]
        # The claimed address, reached through the trusted proxy, is the blocked one.
        assert whoami(proxy, UNKNOWN_KEY, **{"X-Forwarded-For": CLIENT}) == 429


def test_the_console_passes_on_the_client_behind_the_proxy(at: Peer) -> None:
    """The console calls the API in process with its request's client: the client
    behind the proxy, so a console sign-in's failures are that client's."""
    with at(PROXY) as world:
        forwarded = {"X-Forwarded-For": CLIENT}
        for _ in range(3):
            form = world.client.get("/console/sign-in", headers=forwarded)
            fields = {"csrf_token": csrf_token(form.text), "api_key": UNKNOWN_KEY}
            answer = world.client.post("/console/sign-in", data=fields, headers=forwarded)
            assert answer.status_code == 401, answer.text
        assert whoami(world, UNKNOWN_KEY, **forwarded) == 429
        assert whoami(world, UNKNOWN_KEY, **{"X-Forwarded-For": OTHER}) == 401


# ---- what a blocked request costs ----------------------------------------------------


class CountingStore:
    """The real issuing store, counting the key reads made through it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.reads: list[str] = []

    async def caller(self, digest: str) -> Any:
        self.reads.append(digest)
        return await self.store.caller(digest)


def test_the_check_of_a_blocked_key_is_one_read_and_none_for_what_is_no_key(
    store: Store, clock: ManualClock, world: World
) -> None:
    agent = world.agent("u1")
    counting = CountingStore(issue_store(store))
    authenticates = key_check(counting, clock)

    async def checks() -> list[bool]:
        try:
            return [
                await authenticates(presented)
                for presented in (None, "", "wk-short", f"{UNKNOWN_KEY}!", UNKNOWN_KEY, agent.key)
            ]
        finally:
            await counting.store.close()

    assert asyncio.run(checks()) == [False] * 5 + [True]
    # One read for each well-formed key, none for the rest.
    assert len(counting.reads) == 2
