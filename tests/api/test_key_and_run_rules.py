"""Rules that keep a leaked run key from persisting, and principals from forging runs."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.support import World, bearer


def create_key(client: TestClient, key: str, **body: Any) -> dict[str, Any]:
    payload = {"name": "copy", "type": "personal", "scopes": ["federate"], "expires_in": "1d"}
    response = client.post("/api/v1/api-keys", json={**payload, **body}, headers=bearer(key))
    assert response.status_code == 201, response.text
    return dict(response.json())


def key_id(client: TestClient, key: str) -> str:
    return str(client.get("/api/v1/whoami", headers=bearer(key)).json()["key"]["id"])


def test_a_leaked_key_cannot_outlive_its_deletion_or_lock_out_its_owner(
    world: World, client: TestClient
) -> None:
    world.principal("u1")
    laptop = world.api_key("u1", name="laptop")
    leaked = world.api_key("u1", name="run", expires_in="90d")
    copy = create_key(client, leaked, name="attacker")
    assert copy["principal_uid"] == "u1"

    # The copy can delete neither the owner's other key nor the key it came from.
    for victim in (key_id(client, laptop), key_id(client, leaked)):
        response = client.delete(f"/api/v1/api-keys/{victim}", headers=bearer(copy["key"]))
        assert response.status_code == 404
    assert client.get("/api/v1/whoami", headers=bearer(laptop)).status_code == 200

    # Deleting the leaked key deletes what it created, at once.
    response = client.delete(f"/api/v1/api-keys/{key_id(client, leaked)}", headers=bearer(laptop))
    assert response.status_code == 404  # not the laptop key's to delete either ...
    response = client.delete(f"/api/v1/api-keys/{key_id(client, leaked)}", headers=world.admin)
    assert response.status_code == 204  # ... but the admin's
    assert client.get("/api/v1/whoami", headers=bearer(leaked)).status_code == 401
    assert client.get("/api/v1/whoami", headers=bearer(copy["key"])).status_code == 401
    assert client.get("/api/v1/whoami", headers=bearer(laptop)).status_code == 200


def test_a_key_deletes_itself_and_its_descendants(world: World, client: TestClient) -> None:
    world.principal("u1")
    root = world.api_key("u1")
    child = create_key(client, root, name="child")
    grandchild = create_key(client, child["key"], name="grandchild")
    response = client.delete(f"/api/v1/api-keys/{child['id']}", headers=bearer(root))
    assert response.status_code == 204
    assert client.get("/api/v1/whoami", headers=bearer(grandchild["key"])).status_code == 401
    assert client.get("/api/v1/whoami", headers=bearer(root)).status_code == 200
    response = client.delete(f"/api/v1/api-keys/{key_id(client, root)}", headers=bearer(root))
    assert response.status_code == 204
    assert client.get("/api/v1/whoami", headers=bearer(root)).status_code == 401


def test_asking_for_someone_elses_key_reveals_nothing_about_them(
    world: World, client: TestClient
) -> None:
    world.principal("u1")
    world.principal("u2", email="bob@example.com")
    world.principal("svc", type="service_account")
    mine = world.api_key("u1")
    answers = set()
    for target in ("u2", "svc", "nobody"):
        response = client.post(
            "/api/v1/api-keys",
            json={"name": "x", "principal_uid": target, "expires_in": "1d"},
            headers=bearer(mine),
        )
        assert response.status_code == 403
        answers.add(response.json()["detail"])
    assert len(answers) == 1


def test_a_principal_cannot_register_or_move_its_own_runs(world: World, client: TestClient) -> None:
    world.principal("u1")
    world.principal("u2", email="bob@example.com")
    orchestrating_user = world.api_key("u1", scopes=("runs:write", "federate"))
    forged = {"principal_uid": "u1", "environment": "prod", "state": "INPROGRESS"}
    response = client.post("/api/v1/runs", json=forged, headers=bearer(orchestrating_user))
    assert response.status_code == 403
    assert "own principal" in response.json()["detail"]

    # For another principal it may, and an admin may do either.
    other = {**forged, "principal_uid": "u2"}
    assert (
        client.post("/api/v1/runs", json=other, headers=bearer(orchestrating_user)).status_code
        == 201
    )
    own = world.run("u1", environment="prod")
    response = client.patch(
        f"/api/v1/runs/{own['run_id']}",
        json={"state": "QUEUED"},
        headers=bearer(orchestrating_user),
    )
    assert response.status_code == 403
    response = client.patch(
        f"/api/v1/runs/{own['run_id']}", json={"state": "QUEUED"}, headers=world.admin
    )
    assert response.status_code == 200
