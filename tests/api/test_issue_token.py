"""``POST /api/v1/federate/issue-token``: what is signed, what is answered, what is audited.

Every token is checked with PyJWT against the JWKS the application publishes. PyJWT reads
the wall clock, so its checks run frozen at the moment of the injected clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from federation.api import create_app
from federation.clock import ManualClock
from federation.registry.principals import bootstrap_admin
from federation.server.runtime import open_keyring
from federation.settings import Settings
from federation.store import Store
from tests.conftest import make_settings
from tests.support import Agent, World, bearer

STS = "sts.amazonaws.com"
ISSUE = "/api/v1/federate/issue-token"
REGISTERED = ("iss", "sub", "aud", "iat", "nbf", "exp", "jti")
BODY_FIELDS = {
    "token",
    "token_type",
    "issued_at",
    "expires_at",
    "issuer",
    "subject",
    "audience",
    "jti",
    "kid",
}


# ---- helpers shared by the issue-token files ------------------------------------------


def discovery_issuer(client: TestClient) -> str:
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    return str(response.json()["issuer"])


def published_keys(client: TestClient) -> jwt.PyJWKSet:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return jwt.PyJWKSet.from_dict(response.json())


def published_kids(client: TestClient) -> set[str]:
    return {str(key["kid"]) for key in client.get("/.well-known/jwks.json").json()["keys"]}


def verify(
    client: TestClient,
    token: str,
    *,
    audience: str,
    at: datetime,
    algorithm: str = "ES256",
) -> dict[str, Any]:
    """Claims of ``token`` once PyJWT has checked it against the published JWKS, as a
    verifier would at the moment ``at``."""
    header = jwt.get_unverified_header(token)
    key = published_keys(client)[header["kid"]]
    assert key.algorithm_name == algorithm
    with freeze_time(at):
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[algorithm],
            audience=audience,
            issuer=discovery_issuer(client),
            options={"require": list(REGISTERED)},
        )
    return claims


def payload_segment(token: str) -> dict[str, Any]:
    """The payload as sent, without any library interpreting it."""
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def timestamp(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def issued(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def key_id(client: TestClient, key: str) -> str:
    return str(client.get("/api/v1/whoami", headers=bearer(key)).json()["key"]["id"])


def audit_rows(world: World, **filters: str) -> list[dict[str, Any]]:
    response = world.client.get(
        "/api/v1/tokens", params={"limit": "500", **filters}, headers=world.admin
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


@contextmanager
def custom_world(tmp_path: Path, clock: ManualClock, **overrides: Any) -> Iterator[World]:
    """A second application, on its own store and keys, with other settings."""
    settings: Settings = make_settings(tmp_path / "custom", **overrides)
    store = Store.from_url(settings.database_url)
    try:
        store.migrate()
        keyring = open_keyring(settings, clock)
        keyring.ensure()
        app = create_app(settings, store=store, keyring=keyring, clock=clock)
        with store.session() as session:
            created = bootstrap_admin(session, clock.now())
        assert created is not None
        with TestClient(app, raise_server_exceptions=False) as client:
            yield World(client, created.raw)
    finally:
        store.dispose()


# ---- the token ------------------------------------------------------------------------


def test_token_is_an_es256_jwt_signed_by_a_published_key(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    body = issued(world.issue(world.agent()))

    header = jwt.get_unverified_header(body["token"])
    assert header == {"typ": "JWT", "alg": "ES256", "kid": body["kid"]}
    assert header["kid"] in published_kids(client)
    verify(client, body["token"], audience=STS, at=clock.now())


def test_user_claims_are_those_of_the_design(
    world: World, client: TestClient, clock: ManualClock, settings: Settings
) -> None:
    agent = world.agent()
    body = issued(world.issue(agent))

    claims = verify(client, body["token"], audience=STS, at=clock.now())
    iat = int(clock.now().timestamp()) - settings.clock_skew
    assert claims == {
        "iss": discovery_issuer(client),
        "sub": "user:u1",
        "aud": [STS],
        "iat": iat,
        "nbf": iat,
        "exp": iat + 3600,
        "jti": body["jti"],
        "email": "ada@example.com",
        "teams": ["t1"],
        "run_id": agent.run_id,
        "environment": "e1",
        "agent_name": "nightly",
        "skill_spec": "acme/repo:deploy",
        "host": "warp",
    }
    raw = payload_segment(body["token"])
    assert raw["iss"] == settings.issuer
    assert isinstance(raw["aud"], list)
    for name in ("iat", "nbf", "exp"):
        assert type(raw[name]) is int


def test_service_account_token_carries_no_email(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    agent = world.agent("sa1", type="service_account", email=None, host="worker-7")
    body = issued(world.issue(agent))

    claims = verify(client, body["token"], audience=STS, at=clock.now())
    assert "email" not in claims
    assert claims["sub"] == "service_account:sa1"
    assert claims["teams"] == ["t1"]
    assert claims["host"] == "worker-7"


def test_claims_the_run_lacks_are_omitted(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    world.principal("u1")
    key = world.api_key("u1")
    run = world.run("u1")
    agent = Agent(uid="u1", key=key, run_id=run["run_id"], workload_token=run["workload_token"])

    claims = verify(client, issued(world.issue(agent))["token"], audience=STS, at=clock.now())
    assert claims["run_id"] == run["run_id"]
    for name in ("environment", "agent_name", "skill_spec", "host"):
        assert name not in claims


def test_response_body_agrees_with_the_claims(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    body = issued(world.issue(world.agent(), subject_template=["teams", "environment"]))

    assert set(body) == BODY_FIELDS
    claims = verify(client, body["token"], audience=STS, at=clock.now())
    assert body["token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert body["issuer"] == claims["iss"]
    assert body["subject"] == claims["sub"] == "teams:t1/environment:e1"
    assert body["audience"] == claims["aud"] == [STS]
    assert body["jti"] == claims["jti"]
    assert body["kid"] == jwt.get_unverified_header(body["token"])["kid"]
    assert timestamp(body["issued_at"]) == claims["iat"]
    assert timestamp(body["expires_at"]) == claims["exp"]
    assert datetime.fromisoformat(body["issued_at"]).tzinfo is not None


def test_times_come_from_the_injected_clock(
    world: World, client: TestClient, clock: ManualClock, settings: Settings
) -> None:
    agent = world.agent()
    clock.advance(timedelta(days=3, hours=2, minutes=17, seconds=11))
    body = issued(world.issue(agent, duration="15m"))

    expected = clock.now() - timedelta(seconds=settings.clock_skew)
    assert datetime.fromisoformat(body["issued_at"]) == expected
    assert datetime.fromisoformat(body["expires_at"]) == expected + timedelta(minutes=15)
    claims = verify(client, body["token"], audience=STS, at=clock.now())
    assert claims["iat"] == int(expected.timestamp())


def test_clock_skew_setting_moves_iat_and_nbf_back(tmp_path: Path, clock: ManualClock) -> None:
    with custom_world(tmp_path, clock, clock_skew=42) as other:
        body = issued(other.issue(other.agent()))
        claims = verify(other.client, body["token"], audience=STS, at=clock.now())

    now = int(clock.now().timestamp())
    assert claims["iat"] == claims["nbf"] == now - 42
    assert claims["exp"] == now - 42 + 3600


@pytest.mark.parametrize(
    ("field", "value", "seconds"),
    [
        ("duration", "15m", 15 * 60),
        ("duration", "2h30m", 2 * 3600 + 30 * 60),
        ("duration", "90s", 90),
        ("duration", "1h30m15s", 3600 + 30 * 60 + 15),
        ("requested_duration_seconds", 600, 600),
        ("requested_duration_seconds", 7200, 7200),
    ],
)
def test_requested_duration_is_granted(
    world: World, client: TestClient, clock: ManualClock, field: str, value: Any, seconds: int
) -> None:
    body = issued(world.issue(world.agent(), **{field: value}))

    claims = verify(client, body["token"], audience=STS, at=clock.now())
    assert claims["exp"] - claims["iat"] == seconds
    assert timestamp(body["expires_at"]) - timestamp(body["issued_at"]) == seconds


def test_default_duration_is_one_hour(world: World, client: TestClient, clock: ManualClock) -> None:
    body = issued(world.issue(world.agent()))

    claims = verify(client, body["token"], audience=STS, at=clock.now())
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    ("field", "value"),
    [("duration", "5h"), ("duration", "3h0m1s"), ("requested_duration_seconds", 86400)],
)
def test_duration_over_the_maximum_is_capped(
    world: World, client: TestClient, clock: ManualClock, settings: Settings, field: str, value: Any
) -> None:
    assert settings.max_duration == 3 * 3600
    body = issued(world.issue(world.agent(), **{field: value}))

    claims = verify(client, body["token"], audience=STS, at=clock.now())
    assert claims["exp"] - claims["iat"] == 3 * 3600
    assert datetime.fromisoformat(body["expires_at"]) == datetime.fromisoformat(
        body["issued_at"]
    ) + timedelta(hours=3)


@pytest.mark.parametrize("state", ["CLAIMED", "INPROGRESS"])
def test_a_running_run_gets_tokens(
    world: World, client: TestClient, clock: ManualClock, state: str
) -> None:
    agent = world.agent(state=state)
    body = issued(world.issue(agent))
    assert verify(client, body["token"], audience=STS, at=clock.now())["run_id"] == agent.run_id


def test_jti_is_unique_and_long(world: World, client: TestClient, clock: ManualClock) -> None:
    agent = world.agent()
    jtis = []
    for _ in range(6):
        token = issued(world.issue(agent))["token"]
        jtis.append(verify(client, token, audience=STS, at=clock.now())["jti"])

    assert len(set(jtis)) == len(jtis)
    for jti in jtis:
        assert len(base64.urlsafe_b64decode(jti + "=" * (-len(jti) % 4))) >= 16


def test_without_the_workload_token_requirement_no_header_is_needed(
    world: World, client: TestClient, tmp_path: Path, clock: ManualClock
) -> None:
    strict = world.agent()
    refused = client.post(
        ISSUE, json={"run_id": strict.run_id, "audience": STS}, headers=bearer(strict.key)
    )
    assert refused.status_code == 403

    with custom_world(tmp_path, clock, require_workload_token=False) as relaxed:
        agent = relaxed.agent()
        response = relaxed.client.post(
            ISSUE, json={"run_id": agent.run_id, "audience": STS}, headers=bearer(agent.key)
        )
        body = issued(response)
        claims = verify(relaxed.client, body["token"], audience=STS, at=clock.now())
    assert claims["run_id"] == agent.run_id


# ---- the audit row --------------------------------------------------------------------


def test_each_token_leaves_one_audit_row_without_the_token(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    agent = world.agent()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = client.post(
        ISSUE,
        json={"run_id": agent.run_id, "audience": STS, "subject_template": ["scoped_principal"]},
        headers=agent.headers(traceparent=f"00-{trace}-00f067aa0ba902b7-01"),
    )
    body = issued(response)
    claims = verify(client, body["token"], audience=STS, at=clock.now())

    rows = audit_rows(world, run_id=agent.run_id)
    assert len(rows) == 1
    row = rows[0]
    assert row["jti"] == claims["jti"]
    assert row["run_id"] == agent.run_id
    assert row["principal_uid"] == agent.uid
    assert row["subject"] == claims["sub"] == "scoped_principal:t1/user:u1"
    assert row["audience"] == STS
    assert row["kid"] == body["kid"]
    assert timestamp(row["issued_at"]) == claims["iat"]
    assert timestamp(row["expires_at"]) == claims["exp"]
    assert row["api_key_id"] == key_id(client, agent.key)
    assert row["trace_id"] == trace

    answer = client.get("/api/v1/tokens", headers=world.admin).text
    assert body["token"] not in answer
    assert body["token"].split(".")[2] not in answer

    second = issued(world.issue(agent))
    rows = audit_rows(world, run_id=agent.run_id)
    assert [r["jti"] for r in rows] == [second["jti"], body["jti"]]


def test_a_refused_request_leaves_no_audit_row(world: World) -> None:
    agent = world.agent()
    finished = world.client.patch(
        f"/api/v1/runs/{agent.run_id}", json={"state": "SUCCEEDED"}, headers=world.admin
    )
    assert finished.status_code == 200

    assert world.issue(agent).status_code == 422
    assert audit_rows(world, run_id=agent.run_id) == []
