"""Retiring and revoking keys through the API, and what the answers say."""

from __future__ import annotations

from datetime import timedelta

import jwt
from fastapi.testclient import TestClient

from federation.clock import ManualClock
from tests.support import World, bearer


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def published(client: TestClient) -> set[str]:
    return {key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]}


def test_keys_say_where_they_live(world: World, client: TestClient) -> None:
    items = client.get("/api/v1/keys", headers=world.admin).json()["items"]
    assert {item["alg"] for item in items} == {"ES256", "RS256"}
    for item in items:
        assert item["location"].startswith("file ")
        assert item["location"].endswith(f"{item['kid']}.pem")


def test_retiring_the_signing_key_makes_a_new_one_sign_and_keeps_the_old_published(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    agent = world.agent()
    before = world.issue(agent).json()["token"]
    old = kid_of(before)
    answer = client.post(f"/api/v1/keys/{old}/retire", headers=world.admin)
    assert answer.status_code == 200, answer.text
    change = answer.json()
    assert change["key"]["state"] == "retired"
    assert change["replacement"]["state"] == "active"
    assert change["replacement"]["alg"] == "ES256"
    assert any("cached JWKS" in warning for warning in change["warnings"])
    assert change["outstanding_tokens"] == 1
    after = world.issue(agent).json()["token"]
    assert kid_of(after) == change["replacement"]["kid"]
    assert {old, kid_of(after)} <= published(client)
    clock.advance(timedelta(hours=3, minutes=6))  # past the verification window
    assert old not in published(client)


def test_retiring_promotes_a_published_next_key(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    rotated = client.post("/api/v1/keys/rotate", json={"alg": "RS256"}, headers=world.admin)
    successor = rotated.json()["items"][0]
    assert successor["state"] == "next"
    clock.advance(timedelta(minutes=30))  # published longer than any JWKS cache lives
    active = next(
        item["kid"]
        for item in client.get("/api/v1/keys", headers=world.admin).json()["items"]
        if item["alg"] == "RS256" and item["state"] == "active"
    )
    change = client.post(f"/api/v1/keys/{active}/retire", headers=world.admin).json()
    assert change["replacement"]["kid"] == successor["kid"]
    assert change["replacement"]["state"] == "active"
    assert change["warnings"] == []  # every verifier has it by now


def test_revoking_says_what_it_breaks_and_drops_the_key_at_once(
    world: World, client: TestClient
) -> None:
    agent = world.agent()
    tokens = [world.issue(agent, duration=duration).json() for duration in ("15m", "2h")]
    doomed = kid_of(tokens[0]["token"])
    change = client.post(f"/api/v1/keys/{doomed}/revoke", headers=world.admin).json()
    assert change["key"]["state"] == "removed"
    assert change["outstanding_tokens"] == 2
    assert change["outstanding_until"] == tokens[1]["expires_at"]
    assert any("2 unexpired tokens" in warning for warning in change["warnings"])
    assert doomed not in published(client)
    assert kid_of(world.issue(agent).json()["token"]) == change["replacement"]["kid"]


def test_revoking_a_next_key_needs_no_replacement(world: World, client: TestClient) -> None:
    successor = client.post(
        "/api/v1/keys/rotate", json={"alg": "ES256"}, headers=world.admin
    ).json()["items"][0]
    change = client.post(f"/api/v1/keys/{successor['kid']}/revoke", headers=world.admin).json()
    assert change["replacement"] is None
    assert change["outstanding_tokens"] == 0
    assert successor["kid"] not in published(client)


def test_only_admins_change_keys_and_only_known_ones(world: World, client: TestClient) -> None:
    agent = world.agent()
    kid = kid_of(world.issue(agent).json()["token"])
    for action in ("retire", "revoke"):
        refused = client.post(f"/api/v1/keys/{kid}/{action}", headers=bearer(agent.key))
        assert refused.status_code == 403
        missing = client.post(f"/api/v1/keys/no-such-kid/{action}", headers=world.admin)
        assert missing.status_code == 404
    assert kid in published(client)
