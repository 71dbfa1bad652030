"""Admin endpoints: principals, whoami, signing keys and the token audit list."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from federation.clock import ManualClock
from federation.settings import Settings
from tests.support import World, bearer

ADA = {
    "type": "user",
    "uid": "u1",
    "email": "ada@example.com",
    "display_name": "Ada",
    "teams": ["t1"],
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def problem_code(response: httpx2.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json()["type"]).rstrip("/").rsplit("/", 1)[-1]


# ---- principals -----------------------------------------------------------------------


def test_create_principal_as_in_the_wire_example(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    clock.advance(timedelta(hours=5, seconds=7))
    response = client.post("/api/v1/principals", json=ADA, headers=world.admin)

    assert response.status_code == 201, response.text
    body = response.json()
    assert at(body.pop("created_at")) == clock.now()
    assert body == ADA


def test_get_and_list_principals(world: World, client: TestClient) -> None:
    created = client.post("/api/v1/principals", json=ADA, headers=world.admin).json()
    service = world.principal("sa1", type="service_account", teams=("t1", "t2"), display_name="CI")

    assert client.get("/api/v1/principals/u1", headers=world.admin).json() == created
    assert client.get("/api/v1/principals/sa1", headers=world.admin).json() == service
    assert service["email"] is None
    assert service["teams"] == ["t1", "t2"]

    listed = client.get("/api/v1/principals", headers=world.admin).json()["items"]
    assert listed[:2] == [service, created]  # newest first


def test_unknown_principal_is_not_found(world: World, client: TestClient) -> None:
    response = client.get("/api/v1/principals/nobody", headers=world.admin)
    assert response.status_code == 404
    assert problem_code(response) == "resource-not-found"


def test_duplicate_principal_is_a_conflict(world: World, client: TestClient) -> None:
    assert client.post("/api/v1/principals", json=ADA, headers=world.admin).status_code == 201
    again = {**ADA, "display_name": "Another Ada"}
    response = client.post("/api/v1/principals", json=again, headers=world.admin)

    assert response.status_code == 409
    assert problem_code(response) == "conflict"
    assert client.get("/api/v1/principals/u1", headers=world.admin).json()["display_name"] == "Ada"


def test_service_account_with_an_email_is_refused(world: World, client: TestClient) -> None:
    body = {"type": "service_account", "uid": "sa1", "email": "ci@example.com", "teams": ["t1"]}
    response = client.post("/api/v1/principals", json=body, headers=world.admin)

    assert response.status_code == 400
    assert problem_code(response) == "invalid-request"
    assert client.get("/api/v1/principals/sa1", headers=world.admin).status_code == 404


def test_repeated_teams_are_kept_once(world: World, client: TestClient) -> None:
    body = {**ADA, "teams": ["t1", "t2", "t1"]}
    response = client.post("/api/v1/principals", json=body, headers=world.admin)
    assert response.json()["teams"] == ["t1", "t2"]


@pytest.mark.parametrize("scopes", [("federate",), ("runs:write",)])
def test_principals_need_the_admin_scope(
    world: World, client: TestClient, scopes: tuple[str, ...]
) -> None:
    world.principal("u1")
    key = bearer(world.api_key("u1", scopes=scopes))

    for response in (
        client.post("/api/v1/principals", json={**ADA, "uid": "u2"}, headers=key),
        client.get("/api/v1/principals", headers=key),
        client.get("/api/v1/principals/u1", headers=key),
    ):
        assert response.status_code == 403
        assert problem_code(response) == "not-authorized"
    assert client.get("/api/v1/principals/u2", headers=world.admin).status_code == 404


# ---- whoami ---------------------------------------------------------------------------


def test_whoami_for_a_personal_key(world: World, client: TestClient, clock: ManualClock) -> None:
    world.principal("u1", teams=("t1", "t2"))
    raw = world.api_key("u1", name="laptop", expires_in="90d")
    listed = client.get("/api/v1/api-keys", params={"principal_uid": "u1"}, headers=world.admin)
    (row,) = listed.json()["items"]

    response = client.get("/api/v1/whoami", headers=bearer(raw))
    assert response.status_code == 200
    body = response.json()
    assert at(body["key"].pop("expires_at")) == clock.now() + timedelta(days=90)
    assert body == {
        "type": "user",
        "uid": "u1",
        "display_name": "Ada",
        "email": "ada@example.com",
        "teams": ["t1", "t2"],
        "scopes": ["federate"],
        "key": {
            "id": row["id"],
            "name": "laptop",
            "type": "personal",
            "masked_key": "wk-**" + raw[-4:],
        },
    }
    assert raw not in response.text


def test_whoami_for_an_agent_key(world: World, client: TestClient) -> None:
    world.principal("sa1", type="service_account", display_name="Nightly")
    raw = world.api_key("sa1", scopes=("runs:write", "federate"), expires_in="never")

    body = client.get("/api/v1/whoami", headers=bearer(raw)).json()
    assert (body["type"], body["uid"], body["display_name"]) == (
        "service_account",
        "sa1",
        "Nightly",
    )
    assert body["email"] is None
    assert body["scopes"] == ["federate", "runs:write"]
    assert body["key"]["type"] == "agent"
    assert body["key"]["expires_at"] is None
    assert body["key"]["masked_key"] == "wk-**" + raw[-4:]


def test_whoami_needs_a_key(client: TestClient) -> None:
    response = client.get("/api/v1/whoami")
    assert response.status_code == 401
    assert problem_code(response) == "authentication-required"


# ---- signing keys ---------------------------------------------------------------------


def keys(client: TestClient, world: World) -> list[dict[str, Any]]:
    response = client.get("/api/v1/keys", headers=world.admin)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_keys_show_both_algorithms_active_and_published(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    items = keys(client, world)

    assert sorted(key["alg"] for key in items) == ["ES256", "RS256"]
    assert {key["state"] for key in items} == {"active"}
    assert all(at(key["activates_at"]) <= clock.now() for key in items)
    jwks = client.get("/.well-known/jwks.json").json()["keys"]
    assert {(k["kid"], k["alg"]) for k in jwks} == {(k["kid"], k["alg"]) for k in items}


@pytest.mark.parametrize(
    ("body", "algorithms"),
    [(None, ["ES256", "RS256"]), ({"alg": "RS256"}, ["RS256"]), ({"alg": "ES256"}, ["ES256"])],
    ids=["both", "RS256", "ES256"],
)
def test_rotate_returns_next_keys_after_the_lead_time(
    world: World,
    client: TestClient,
    clock: ManualClock,
    settings: Settings,
    body: dict[str, str] | None,
    algorithms: list[str],
) -> None:
    before = {key["kid"] for key in keys(client, world)}
    clock.advance(timedelta(minutes=13))
    response = client.post("/api/v1/keys/rotate", json=body, headers=world.admin)

    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert sorted(item["alg"] for item in items) == algorithms
    for item in items:
        assert item["kid"] not in before
        assert item["state"] == "next"
        assert at(item["created_at"]) == clock.now()
        assert at(item["activates_at"]) == clock.now() + timedelta(seconds=settings.key_lead_time)
    listed = keys(client, world)
    assert len(listed) == len(before) + len(algorithms)
    assert [key["kid"] for key in listed[: len(items)]] == [item["kid"] for item in items]


def test_keys_show_when_a_rotated_key_retires_and_is_removed(
    world: World, client: TestClient, clock: ManualClock, settings: Settings
) -> None:
    (old,) = [key for key in keys(client, world) if key["alg"] == "ES256"]
    rotated = client.post("/api/v1/keys/rotate", json={"alg": "ES256"}, headers=world.admin)
    (new,) = rotated.json()["items"]
    switch = at(new["activates_at"])

    clock.set(switch)
    states = {key["kid"]: key for key in keys(client, world)}
    assert states[new["kid"]]["state"] == "active"
    assert states[old["kid"]]["state"] == "retired"
    assert at(states[old["kid"]]["retires_at"]) == switch
    assert at(states[old["kid"]]["removed_at"]) == switch + settings.verification_window

    clock.set(switch + settings.verification_window)
    assert {key["kid"]: key["state"] for key in keys(client, world)}[old["kid"]] == "removed"


def test_rotate_refuses_an_unknown_algorithm(world: World, client: TestClient) -> None:
    response = client.post("/api/v1/keys/rotate", json={"alg": "HS256"}, headers=world.admin)
    assert response.status_code == 400
    assert len(keys(client, world)) == 2


def test_keys_need_the_admin_scope(world: World, client: TestClient) -> None:
    world.principal("u1")
    key = bearer(world.api_key("u1", scopes=("federate", "runs:write")))

    assert client.get("/api/v1/keys", headers=key).status_code == 403
    assert client.post("/api/v1/keys/rotate", headers=key).status_code == 403
    assert len(keys(client, world)) == 2


# ---- the token audit list -------------------------------------------------------------


def tokens(client: TestClient, world: World, **filters: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/tokens", params=filters, headers=world.admin)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_audit_list_is_newest_first_and_filters(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    ada = world.agent("u1")
    bob = world.agent("u2", email="bob@example.com")
    issued = []
    for agent, audience in [
        (ada, "sts.amazonaws.com"),
        (bob, "aud-b"),
        (ada, "aud-b"),
        (bob, "sts.amazonaws.com"),
    ]:
        clock.advance(timedelta(seconds=30))
        response = world.issue(agent, audience=audience)
        assert response.status_code == 200, response.text
        issued.append((response.json()["jti"], agent, audience))

    everything = tokens(client, world)
    assert [row["jti"] for row in everything] == [jti for jti, _, _ in reversed(issued)]
    stamps = [at(row["issued_at"]) for row in everything]
    assert stamps == sorted(stamps, reverse=True)

    def expected(keep: Any) -> list[str]:
        return [jti for jti, agent, audience in reversed(issued) if keep(agent, audience)]

    assert [r["jti"] for r in tokens(client, world, run_id=ada.run_id)] == expected(
        lambda agent, _: agent is ada
    )
    assert [r["jti"] for r in tokens(client, world, principal_uid="u2")] == expected(
        lambda agent, _: agent is bob
    )
    assert [r["jti"] for r in tokens(client, world, audience="aud-b")] == expected(
        lambda _, audience: audience == "aud-b"
    )
    assert tokens(client, world, run_id=bob.run_id, audience="aud-b") == [
        row for row in everything if row["run_id"] == bob.run_id and row["audience"] == "aud-b"
    ]
    assert tokens(client, world, run_id="no-such-run") == []


def test_audit_list_needs_the_admin_scope(world: World, client: TestClient) -> None:
    agent = world.agent()
    assert world.issue(agent).status_code == 200

    response = client.get("/api/v1/tokens", headers=bearer(agent.key))
    assert response.status_code == 403
    assert problem_code(response) == "not-authorized"
