"""Rate limits and header limits through HTTP: per API key and per run on issuing
(issue-token, preview-token, GraphQL), failed authentications per client address, one
limit shared by two applications through the real Redis, and 431 for large headers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.rate_limits import Buckets, InProcessBuckets, Limits
from federation.rate_limits.redis_buckets import RedisBuckets
from federation.store import Store
from tests.api.test_errors import AWS, ISSUE, assert_problem, audit_rows
from tests.api.test_graphql import mutate, oz_headers, result_of, user_facing_error
from tests.conftest import make_settings
from tests.support import Agent, World, bearer, free_port

PREVIEW = "/api/v1/federate/preview-token"
UNKNOWN_KEY = "wk-" + "A" * 43  # well-formed, so it is looked up, and unknown


class Apps:
    """Applications on the test's store and keyring, each with the given settings."""

    def __init__(
        self, tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock, admin_key: str
    ) -> None:
        self.tmp_path = tmp_path
        self.store = store
        self.keyring = keyring
        self.clock = clock
        self.admin_key = admin_key

    def manual_buckets(self) -> InProcessBuckets:
        """In-process buckets on the test's clock: they refill only when it moves."""
        return InProcessBuckets(now=lambda: self.clock.now().timestamp())

    @contextmanager
    def world(
        self,
        *,
        buckets: Buckets | None = None,
        address: str = "203.0.113.7",
        **overrides: Any,
    ) -> Iterator[World]:
        settings = make_settings(self.tmp_path, **overrides)
        limits = Limits.from_settings(settings, buckets=buckets or self.manual_buckets())
        app = create_app(
            settings, store=self.store, keyring=self.keyring, clock=self.clock, limits=limits
        )
        with TestClient(app, raise_server_exceptions=False, client=(address, 50000)) as client:
            yield World(client, self.admin_key)


@pytest.fixture
def apps(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock, admin_key: str
) -> Apps:
    return Apps(tmp_path, store, keyring, clock, admin_key)


def assert_rate_limited(response: httpx2.Response, detail: str, retry_after: str) -> None:
    assert_problem(response, 429, "resource_unavailable", retryable=True, detail=detail)
    assert response.headers["Retry-After"] == retry_after


def second_run(world: World, agent: Agent) -> Agent:
    created = world.run(agent.uid, environment="e1")
    return Agent(agent.uid, agent.key, created["run_id"], created["workload_token"])


# ---- per API key ----------------------------------------------------------------------


def test_a_key_over_its_burst_gets_429_until_its_bucket_refills(
    apps: Apps, clock: ManualClock
) -> None:
    with apps.world(rate_limit_key="2/s,burst=3", rate_limit_run="off") as world:
        agent = world.agent("u1")
        other_run = second_run(world, agent)
        for target in (agent, other_run, agent):
            assert world.issue(target).status_code == 200
        refused = world.issue(other_run)
        assert_rate_limited(refused, "too many token requests with this API key", "1")
        assert "2/s,burst=3" in refused.json()["detail"]
        assert len(audit_rows(world)) == 3  # a refused request writes no audit row
        # Another principal's key has its own bucket.
        assert world.issue(world.agent("u2")).status_code == 200
        clock.advance(timedelta(seconds=0.5))
        assert world.issue(agent).status_code == 200
        assert world.issue(agent).status_code == 429


def test_preview_and_graphql_spend_the_same_key_bucket(apps: Apps) -> None:
    with apps.world(rate_limit_key="1/m,burst=3", rate_limit_run="off") as world:
        agent = world.agent("u1")
        body = {"run_id": agent.run_id, "audience": AWS}
        assert world.client.post(PREVIEW, json=body, headers=agent.headers()).status_code == 200
        assert world.issue(agent).status_code == 200
        minted = result_of(mutate(world.client, oz_headers(agent)))
        assert minted["__typename"] == "IssueTaskIdentityTokenOutput"
        refused = world.client.post(PREVIEW, json=body, headers=agent.headers())
        assert_rate_limited(refused, "too many token requests with this API key", "60")
        error = user_facing_error(mutate(world.client, oz_headers(agent)))
        assert error["__typename"] == "PlatformError"
        assert error["info"] == {"code": "RESOURCE_UNAVAILABLE", "retryable": True}
        assert "too many token requests with this API key" in error["detail"]


# ---- per run --------------------------------------------------------------------------


def test_a_run_over_its_burst_gets_429_whichever_key_asks(apps: Apps) -> None:
    with apps.world(rate_limit_key="off", rate_limit_run="1/m,burst=2") as world:
        agent = world.agent("u1")
        other_key = Agent(agent.uid, world.api_key("u1"), agent.run_id, agent.workload_token)
        other_run = second_run(world, agent)
        assert world.issue(agent).status_code == 200
        assert world.issue(other_key).status_code == 200
        assert_rate_limited(world.issue(other_key), "too many token requests for this run", "60")
        assert_rate_limited(world.issue(agent), "too many token requests for this run", "60")
        assert world.issue(other_run).status_code == 200
        assert len(audit_rows(world)) == 3


def test_refused_requests_spend_nothing_of_the_run(apps: Apps) -> None:
    """Only a request that passes every check spends a run's token: no other principal
    (nor a request that is refused anyway) can drain it."""
    with apps.world(rate_limit_key="off", rate_limit_run="1/m,burst=1") as world:
        owner = world.agent("u1")
        stranger = world.agent("u2")
        intruder = Agent(stranger.uid, stranger.key, owner.run_id, owner.workload_token)
        for _ in range(5):
            assert world.issue(intruder).status_code == 403
            assert world.issue(owner, subject_template=["no_such_component"]).status_code == 400
        assert world.issue(owner).status_code == 200
        assert world.issue(owner).status_code == 429


# ---- shared through Redis -------------------------------------------------------------


def test_two_applications_on_one_redis_share_the_limits(
    apps: Apps, clock: ManualClock, redis_url: str, redis_prefix: str
) -> None:
    def shared() -> RedisBuckets:
        return RedisBuckets.from_url(
            redis_url, prefix=redis_prefix, now=lambda: clock.now().timestamp()
        )

    first_buckets, second_buckets = shared(), shared()
    try:
        settings: dict[str, Any] = {"rate_limit_key": "1/m,burst=3", "rate_limit_run": "off"}
        with (
            apps.world(buckets=first_buckets, **settings) as first,
            apps.world(buckets=second_buckets, **settings) as second,
        ):
            agent = first.agent("u1")
            assert first.issue(agent).status_code == 200
            assert second.issue(agent).status_code == 200
            assert first.issue(agent).status_code == 200
            assert second.issue(agent).status_code == 429
            assert first.issue(agent).status_code == 429
            clock.advance(timedelta(seconds=60))  # one token, for whichever asks first
            assert second.issue(agent).status_code == 200
            assert first.issue(agent).status_code == 429
    finally:
        first_buckets.close()
        second_buckets.close()


def test_a_deleted_key_fails_at_once_with_shared_limits(
    apps: Apps, redis_url: str, redis_prefix: str
) -> None:
    buckets = RedisBuckets.from_url(redis_url, prefix=redis_prefix)
    try:
        with apps.world(buckets=buckets) as world:
            agent = world.agent("u1")
            created = world.client.post(
                "/api/v1/api-keys",
                json={
                    "name": "run",
                    "type": "personal",
                    "principal_uid": "u1",
                    "scopes": ["federate"],
                    "expires_in": "30d",
                },
                headers=world.admin,
            )
            assert created.status_code == 201, created.text
            key = Agent("u1", created.json()["key"], agent.run_id, agent.workload_token)
            assert world.issue(key).status_code == 200
            deleted = world.client.delete(
                f"/api/v1/api-keys/{created.json()['id']}", headers=world.admin
            )
            assert deleted.status_code == 204
            assert_problem(world.issue(key), 401, "authentication_required", detail=None)
    finally:
        buckets.close()


def test_redis_down_fails_open(apps: Apps, caplog: pytest.LogCaptureFixture) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(apps.tmp_path, redis_url=down, rate_limit_key="1/h,burst=1")
    limits = Limits.from_settings(settings)
    assert isinstance(limits.buckets, RedisBuckets)
    app = create_app(
        settings, store=apps.store, keyring=apps.keyring, clock=apps.clock, limits=limits
    )
    with (
        caplog.at_level(logging.WARNING, logger="federation.rate_limits"),
        TestClient(app, raise_server_exceptions=False) as client,
    ):
        world = World(client, apps.admin_key)
        agent = world.agent("u1")
        assert [world.issue(agent).status_code for _ in range(3)] == [200, 200, 200]
    assert any("Redis failed" in record.getMessage() for record in caplog.records)


# ---- failed authentications per client address ----------------------------------------


def test_an_address_with_too_many_failures_is_refused_unless_its_key_authenticates(
    apps: Apps,
) -> None:
    with apps.world(rate_limit_auth_failures="1/m,burst=3") as world:
        agent = world.agent("u1")
        client = world.client
        assert client.get("/api/v1/whoami", headers=bearer(UNKNOWN_KEY)).status_code == 401
        assert client.get("/api/v1/whoami").status_code == 401  # no key at all
        bad = {**agent.headers(), "Authorization": f"Bearer {UNKNOWN_KEY}"}
        body = {"run_id": agent.run_id, "audience": AWS}
        assert client.post(ISSUE, json=body, headers=bad).status_code == 401
        refused = client.post(ISSUE, json=body, headers=bad)
        assert_rate_limited(refused, "too many failed authentications from this address", "60")
        whoami = client.get("/api/v1/whoami", headers=bearer(UNKNOWN_KEY))
        assert_rate_limited(whoami, "too many failed authentications", "60")
        # A valid key is served: its address may be a proxy's, shared with the failures.
        assert world.issue(agent).status_code == 200
        assert client.get("/api/v1/whoami", headers=bearer(agent.key)).status_code == 200
        # Paths without a key stay open (a load balancer's health checks).
        assert client.get("/healthz").status_code == 200
        assert client.get("/.well-known/jwks.json").status_code == 200
        # Another address is not held to this one's failures.
        other = TestClient(client.app, raise_server_exceptions=False, client=("198.51.100.9", 1))
        assert other.get("/api/v1/whoami", headers=bearer(UNKNOWN_KEY)).status_code == 401


def test_authenticated_requests_spend_nothing_of_the_address(
    apps: Apps, clock: ManualClock
) -> None:
    with apps.world(rate_limit_auth_failures="1/m,burst=2") as world:
        agent = world.agent("u1")

        def whoami(key: str) -> int:
            return world.client.get("/api/v1/whoami", headers=bearer(key)).status_code

        assert [whoami(agent.key) for _ in range(10)] == [200] * 10
        assert [world.issue(agent).status_code for _ in range(3)] == [200] * 3
        assert [whoami(UNKNOWN_KEY) for _ in range(3)] == [401, 401, 429]
        clock.advance(timedelta(seconds=60))
        assert whoami(agent.key) == 200


def test_graphql_authentication_failures_count_too(apps: Apps) -> None:
    with apps.world(rate_limit_auth_failures="1/m,burst=1") as world:
        agent = world.agent("u1")
        bad = Agent(agent.uid, UNKNOWN_KEY, agent.run_id, agent.workload_token)
        assert mutate(world.client, oz_headers(bad)).status_code == 401
        assert mutate(world.client, oz_headers(bad)).status_code == 429
        assert mutate(world.client, oz_headers(agent)).status_code == 200


# ---- header size ----------------------------------------------------------------------


def assert_headers_too_large(response: httpx2.Response, limit: int) -> None:
    assert response.status_code == 431, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/reference/api-and-sdk/troubleshooting/errors/invalid-request/"
    assert problem["title"] == "The request headers are too large."
    assert problem["detail"] == f"the request headers may not exceed {limit} bytes"
    assert problem["retryable"] is False
    assert len(problem["trace_id"]) == 32


def test_headers_over_the_limit_get_431(apps: Apps) -> None:
    with apps.world(max_header_bytes=2048) as world:
        agent = world.agent("u1")
        padded = {**agent.headers(), "X-Padding": "x" * 2100}
        body = {"run_id": agent.run_id, "audience": AWS}
        for response in (
            world.client.post(ISSUE, json=body, headers=padded),
            world.client.get("/healthz", headers={"X-Padding": "x" * 2100}),
        ):
            assert_headers_too_large(response, 2048)
        within = {**agent.headers(), "X-Padding": "x" * 1000}
        assert world.client.post(ISSUE, json=body, headers=within).status_code == 200


def test_the_default_header_limit_admits_normal_requests_and_refuses_32_kib(
    client: TestClient, world: World
) -> None:
    agent = world.agent("u1")
    assert world.issue(agent).status_code == 200
    big = client.get("/api/v1/whoami", headers={**bearer(agent.key), "Cookie": "c" * 32768})
    assert_headers_too_large(big, 16384)
