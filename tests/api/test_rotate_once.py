"""``POST /api/v1/keys/rotate`` keeps at most one ``next`` key per algorithm: asked again
while one waits, it answers that key with ``created: false`` (``200``; ``201`` when it
made a key), and the JWKS stays the size it was."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.support import World

ROTATE = "/api/v1/keys/rotate"


def rotate(world: World, client: TestClient, body: dict[str, Any] | None) -> Any:
    return client.post(ROTATE, json=body, headers=world.admin)


def published(client: TestClient) -> list[dict[str, Any]]:
    return list(client.get("/.well-known/jwks.json").json()["keys"])


def test_a_second_rotation_answers_the_waiting_key_and_makes_none(
    world: World, client: TestClient
) -> None:
    made = rotate(world, client, {"alg": "ES256"})
    assert made.status_code == 201, made.text
    (new,) = made.json()["items"]
    assert new["state"] == "next"

    again = rotate(world, client, {"alg": "ES256"})
    assert again.status_code == 200, again.text
    (same,) = again.json()["items"]
    assert new["created"] is True
    assert same == {**new, "created": False}

    both = rotate(world, client, None)  # RS256 has none waiting: made; ES256: answered
    assert both.status_code == 201, both.text
    created = {item["alg"]: (item["kid"], item["created"]) for item in both.json()["items"]}
    assert created["ES256"] == (new["kid"], False)
    assert created["RS256"][1] is True

    size = len(client.get("/.well-known/jwks.json").content)
    for _ in range(10):
        assert rotate(world, client, None).status_code == 200
    keys = published(client)
    assert sorted(key["alg"] for key in keys) == ["ES256", "ES256", "RS256", "RS256"]
    assert len(client.get("/.well-known/jwks.json").content) == size
    listed = client.get("/api/v1/keys", headers=world.admin).json()["items"]
    assert sorted(item["alg"] for item in listed if item["state"] == "next") == ["ES256", "RS256"]
