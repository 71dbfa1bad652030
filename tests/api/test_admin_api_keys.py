"""API keys: created once in the raw, listed masked, self-service limits, deletion."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from federation.clock import ManualClock
from tests.support import World, bearer

LISTED_FIELDS = {
    "id",
    "name",
    "type",
    "principal_uid",
    "scopes",
    "masked_key",
    "created_at",
    "expires_at",
    "last_used_at",
}


def at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def create(client: TestClient, headers: dict[str, str], **body: Any) -> httpx2.Response:
    return client.post("/api/v1/api-keys", json=body, headers=headers)


def listed(client: TestClient, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/api-keys", params={"limit": "500", **params}, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def by_id(client: TestClient, world: World, key_id: str) -> dict[str, Any]:
    (found,) = [item for item in listed(client, world.admin) if item["id"] == key_id]
    return found


def whoami(client: TestClient, raw: str) -> httpx2.Response:
    return client.get("/api/v1/whoami", headers=bearer(raw))


def test_create_as_in_the_wire_example(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    world.principal("u1")
    clock.advance(timedelta(hours=3, minutes=1))
    response = create(
        client,
        world.admin,
        name="ci",
        type="personal",
        principal_uid="u1",
        scopes=["federate"],
        expires_in="30d",
    )

    assert response.status_code == 201, response.text
    body = response.json()
    raw = body["key"]
    assert raw.startswith("wk-")
    assert len(raw) > 40
    assert body["id"]
    assert body["masked_key"] == "wk-**" + raw[-4:]
    assert (body["name"], body["type"], body["principal_uid"]) == ("ci", "personal", "u1")
    assert body["scopes"] == ["federate"]
    assert at(body["created_at"]) == clock.now()
    assert at(body["expires_at"]) == clock.now() + timedelta(days=30)
    assert body["last_used_at"] is None
    assert whoami(client, raw).json()["uid"] == "u1"


def test_the_raw_key_is_shown_once(world: World, client: TestClient) -> None:
    world.principal("u1")
    created = create(client, world.admin, name="ci", principal_uid="u1").json()
    raw = created["key"]
    assert whoami(client, raw).status_code == 200

    response = client.get("/api/v1/api-keys", headers=world.admin)
    item = by_id(client, world, created["id"])
    assert set(item) == LISTED_FIELDS
    for name in LISTED_FIELDS - {"last_used_at"}:
        assert item[name] == created[name], name
    assert raw not in response.text
    assert raw[3:] not in response.text
    assert hashlib.sha256(raw.encode()).hexdigest() not in response.text


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [("1d", timedelta(days=1)), ("30d", timedelta(days=30)), ("90d", timedelta(days=90))],
)
def test_expiry_comes_from_the_injected_clock(
    world: World, client: TestClient, clock: ManualClock, expires_in: str, lifetime: timedelta
) -> None:
    world.principal("u1")
    clock.advance(timedelta(days=400, minutes=7))
    body = create(client, world.admin, name="k", principal_uid="u1", expires_in=expires_in).json()

    assert at(body["expires_at"]) == clock.now() + lifetime
    assert at(by_id(client, world, body["id"])["expires_at"]) == clock.now() + lifetime

    clock.advance(lifetime - timedelta(seconds=1))
    assert whoami(client, body["key"]).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert whoami(client, body["key"]).status_code == 401


def test_a_key_that_never_expires(world: World, client: TestClient, clock: ManualClock) -> None:
    world.principal("u1")
    body = create(client, world.admin, name="k", principal_uid="u1", expires_in="never").json()

    assert body["expires_at"] is None
    clock.advance(timedelta(days=3650))
    assert whoami(client, body["key"]).status_code == 200


def test_last_used_is_set_after_use(world: World, client: TestClient, clock: ManualClock) -> None:
    world.principal("u1")
    body = create(client, world.admin, name="k", principal_uid="u1").json()
    assert by_id(client, world, body["id"])["last_used_at"] is None

    clock.advance(timedelta(minutes=5))
    assert whoami(client, body["key"]).status_code == 200
    assert at(by_id(client, world, body["id"])["last_used_at"]) == clock.now()

    clock.advance(timedelta(hours=2))
    used = clock.now()
    assert whoami(client, body["key"]).status_code == 200
    clock.advance(timedelta(minutes=10))
    assert at(by_id(client, world, body["id"])["last_used_at"]) == used


def test_last_used_is_set_when_an_authenticated_request_is_refused(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    world.principal("u1")
    body = create(client, world.admin, name="k", principal_uid="u1", scopes=["federate"]).json()
    clock.advance(timedelta(minutes=5))

    refused = client.get("/api/v1/principals", headers=bearer(body["key"]))
    assert refused.status_code == 403  # the key authenticated; its scope is too small
    assert at(by_id(client, world, body["id"])["last_used_at"]) == clock.now()


@pytest.mark.parametrize(
    ("principal", "key_type"), [("user", "agent"), ("service_account", "personal")]
)
def test_key_type_must_suit_the_principal(
    world: World, client: TestClient, principal: str, key_type: str
) -> None:
    world.principal("p1", type=principal)
    response = create(client, world.admin, name="k", type=key_type, principal_uid="p1")

    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-request/")
    assert listed(client, world.admin, principal_uid="p1") == []


def test_an_agent_key_acts_as_its_service_account(world: World, client: TestClient) -> None:
    world.principal("sa1", type="service_account")
    body = create(client, world.admin, name="k", type="agent", principal_uid="sa1").json()

    assert body["type"] == "agent"
    me = whoami(client, body["key"]).json()
    assert (me["type"], me["uid"]) == ("service_account", "sa1")


# ---- a personal key's holder ----------------------------------------------------------


@pytest.fixture
def holder(world: World) -> str:
    """Ada's federate key (30 days); Bob and a service account have keys too."""
    world.principal("u1")
    world.principal("u2", email="bob@example.com")
    world.principal("sa1", type="service_account")
    world.api_key("u2", name="bob")
    world.api_key("sa1", name="robot")
    return world.api_key("u1", name="ada")


def test_holder_manages_their_own_personal_keys(
    world: World, client: TestClient, holder: str
) -> None:
    mine = bearer(holder)
    own = [item["id"] for item in listed(client, mine)]
    assert [item["name"] for item in listed(client, mine)] == ["ada"]

    response = create(client, mine, name="second", scopes=["federate"], expires_in="1d")
    assert response.status_code == 201, response.text
    second = response.json()
    assert second["principal_uid"] == "u1"
    assert second["type"] == "personal"
    assert whoami(client, second["key"]).json()["uid"] == "u1"
    assert [item["id"] for item in listed(client, mine)] == [second["id"], *own]

    deleted = client.delete(f"/api/v1/api-keys/{second['id']}", headers=mine)
    assert deleted.status_code == 204
    assert [item["id"] for item in listed(client, mine)] == own
    assert whoami(client, second["key"]).status_code == 401


def test_holder_cannot_create_keys_for_others(
    world: World, client: TestClient, holder: str
) -> None:
    mine = bearer(holder)
    for body in (
        {"name": "x", "type": "personal", "principal_uid": "u2"},
        {"name": "x", "type": "agent", "principal_uid": "sa1"},
    ):
        response = create(client, mine, **body)
        assert response.status_code == 403, body
        assert response.json()["type"].endswith("/not-authorized/")
    assert len(listed(client, world.admin, principal_uid="u2")) == 1
    assert len(listed(client, world.admin, principal_uid="sa1")) == 1


@pytest.mark.parametrize("scopes", [["runs:write"], ["admin"], ["federate", "runs:write"]])
def test_holder_cannot_grant_scopes_they_lack(
    world: World, client: TestClient, holder: str, scopes: list[str]
) -> None:
    response = create(client, bearer(holder), name="x", scopes=scopes, expires_in="1d")

    assert response.status_code == 403
    assert [item["name"] for item in listed(client, bearer(holder))] == ["ada"]


def test_holder_cannot_create_a_key_outliving_their_own(
    world: World, client: TestClient, clock: ManualClock, holder: str
) -> None:
    mine = bearer(holder)
    for expires_in in ("90d", "never"):
        response = create(client, mine, name="x", expires_in=expires_in)
        assert response.status_code == 403, expires_in

    assert create(client, mine, name="same-end", expires_in="30d").status_code == 201
    clock.advance(timedelta(minutes=1))
    assert create(client, mine, name="later-end", expires_in="30d").status_code == 403
    assert create(client, mine, name="shorter", expires_in="1d").status_code == 201


def test_holder_cannot_see_or_delete_others_keys(
    world: World, client: TestClient, holder: str
) -> None:
    others = [item for item in listed(client, world.admin) if item["principal_uid"] != "u1"]
    assert {item["principal_uid"] for item in others} == {"u2", "sa1", "federation-admin"}

    mine = bearer(holder)
    assert listed(client, mine, principal_uid="u2") == []
    for item in others:
        response = client.delete(f"/api/v1/api-keys/{item['id']}", headers=mine)
        assert response.status_code == 404
        assert response.json()["type"].endswith("/resource-not-found/")
    still = {item["id"] for item in listed(client, world.admin)}
    assert {item["id"] for item in others} <= still


def test_admin_sees_and_deletes_every_key(world: World, client: TestClient, holder: str) -> None:
    everything = listed(client, world.admin)
    assert {item["principal_uid"] for item in everything} == {"u1", "u2", "sa1", "federation-admin"}
    assert [item["principal_uid"] for item in listed(client, world.admin, principal_uid="u2")] == [
        "u2"
    ]

    (ada,) = [item for item in everything if item["principal_uid"] == "u1"]
    assert client.delete(f"/api/v1/api-keys/{ada['id']}", headers=world.admin).status_code == 204
    assert ada["id"] not in {item["id"] for item in listed(client, world.admin)}
    assert whoami(client, holder).status_code == 401
    assert client.delete(f"/api/v1/api-keys/{ada['id']}", headers=world.admin).status_code == 404


def test_a_deleted_key_stops_working_at_the_next_request(world: World, client: TestClient) -> None:
    agent = world.agent()
    assert world.issue(agent).status_code == 200
    key_id = whoami(client, agent.key).json()["key"]["id"]

    assert client.delete(f"/api/v1/api-keys/{key_id}", headers=bearer(agent.key)).status_code == 204
    response = world.issue(agent)
    assert response.status_code == 401
    assert response.json()["type"].endswith("/authentication-required/")
    assert key_id not in {item["id"] for item in listed(client, world.admin)}


def test_an_unknown_key_id_is_not_found(world: World, client: TestClient) -> None:
    response = client.delete("/api/v1/api-keys/ak_0000000000000000", headers=world.admin)
    assert response.status_code == 404
