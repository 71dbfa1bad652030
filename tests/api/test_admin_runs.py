"""Runs: registered, read, listed and moved by ``runs:write`` keys."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from federation.clock import ManualClock
from federation.store import Store
from federation.store.models import Run
from tests.support import World, bearer

WIRE_RUN = {
    "run_id": "r1",
    "principal_uid": "u1",
    "team_uid": "t1",
    "environment": "e1",
    "agent_name": "nightly",
    "skill_spec": "acme/repo:deploy",
    "host": "warp",
    "state": "INPROGRESS",
}
FINISHED = ("SUCCEEDED", "FAILED", "ERROR", "CANCELLED")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def create(client: TestClient, headers: dict[str, str], **body: Any) -> httpx2.Response:
    return client.post("/api/v1/runs", json=body, headers=headers)


def run_ids(client: TestClient, headers: dict[str, str], **filters: str) -> list[str]:
    response = client.get("/api/v1/runs", params={"limit": "500", **filters}, headers=headers)
    assert response.status_code == 200, response.text
    return [item["run_id"] for item in response.json()["items"]]


@pytest.fixture
def orchestrator(world: World) -> dict[str, str]:
    """A non-admin runs:write key, as an orchestrator holds; Ada exists in t1 and t2."""
    world.principal("u1", teams=("t1", "t2"))
    world.principal("orch", type="service_account")
    return bearer(world.api_key("orch", scopes=("runs:write",)))


def test_create_run_as_in_the_wire_example(
    client: TestClient, clock: ManualClock, orchestrator: dict[str, str]
) -> None:
    clock.advance(timedelta(minutes=42))
    response = create(client, orchestrator, **WIRE_RUN)

    assert response.status_code == 201, response.text
    body = response.json()
    token = body.pop("workload_token")
    assert isinstance(token, str)
    assert len(token) >= 32
    assert at(body.pop("created_at")) == clock.now()
    assert at(body.pop("updated_at")) == clock.now()
    assert body == WIRE_RUN

    fetched = client.get("/api/v1/runs/r1", headers=orchestrator)
    assert fetched.status_code == 200
    assert "workload_token" not in fetched.json()
    assert {k: v for k, v in fetched.json().items() if k in WIRE_RUN} == WIRE_RUN


def test_run_ids_are_generated_when_absent(
    client: TestClient, orchestrator: dict[str, str]
) -> None:
    generated = []
    for _ in range(5):
        response = create(client, orchestrator, principal_uid="u1")
        assert response.status_code == 201, response.text
        generated.append(response.json()["run_id"])

    for run_id in generated:
        assert re.fullmatch(r"[A-Za-z0-9]{22}", run_id), run_id
    assert len(set(generated)) == len(generated)
    assert set(run_ids(client, orchestrator)) == set(generated)


def test_the_workload_token_is_shown_once_and_stored_hashed(
    client: TestClient, store: Store, orchestrator: dict[str, str]
) -> None:
    first = create(client, orchestrator, **WIRE_RUN).json()
    second = create(client, orchestrator, principal_uid="u1").json()
    assert first["workload_token"] != second["workload_token"]

    for path in ("/api/v1/runs", "/api/v1/runs/r1", f"/api/v1/runs/{second['run_id']}"):
        text = client.get(path, headers=orchestrator).text
        assert "workload_token" not in text
        assert first["workload_token"] not in text
        assert second["workload_token"] not in text
    patched = client.patch("/api/v1/runs/r1", json={"state": "CLAIMED"}, headers=orchestrator)
    assert first["workload_token"] not in patched.text

    with store.session() as session:
        for row in session.scalars(select(Run)):
            stored = " ".join(str(getattr(row, c.key)) for c in Run.__table__.columns)
            assert first["workload_token"] not in stored
            assert second["workload_token"] not in stored


def test_the_team_must_be_one_of_the_principals(
    client: TestClient, orchestrator: dict[str, str]
) -> None:
    assert create(client, orchestrator, principal_uid="u1", team_uid="t2").status_code == 201
    response = create(client, orchestrator, run_id="r9", principal_uid="u1", team_uid="t3")

    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-request/")
    assert client.get("/api/v1/runs/r9", headers=orchestrator).status_code == 404


def test_an_unknown_principal_is_not_found(
    client: TestClient, orchestrator: dict[str, str]
) -> None:
    response = create(client, orchestrator, run_id="r1", principal_uid="nobody")
    assert response.status_code == 404
    assert run_ids(client, orchestrator) == []


def test_a_duplicate_run_id_is_a_conflict(client: TestClient, orchestrator: dict[str, str]) -> None:
    assert create(client, orchestrator, **WIRE_RUN).status_code == 201
    response = create(client, orchestrator, **{**WIRE_RUN, "environment": "prod"})

    assert response.status_code == 409
    fetched = client.get("/api/v1/runs/r1", headers=orchestrator).json()
    assert fetched["environment"] == "e1"


@pytest.mark.parametrize(
    "run_id", ["a/b", "a:b", "r" * 58, "r 1", "r\n", "", "-r", "r%3A", "ü"], ids=repr
)
def test_invalid_run_ids_are_refused(
    client: TestClient, orchestrator: dict[str, str], run_id: str
) -> None:
    response = create(client, orchestrator, run_id=run_id, principal_uid="u1")

    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-request/")
    assert run_ids(client, orchestrator) == []


def test_the_longest_run_id_fits_an_aws_session_name(
    client: TestClient, orchestrator: dict[str, str]
) -> None:
    run_id = "R" * 57
    assert len(f"Oz_Run_{run_id}") == 64
    assert create(client, orchestrator, run_id=run_id, principal_uid="u1").status_code == 201
    assert run_ids(client, orchestrator) == [run_id]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("environment", "e\n1"),
        ("agent_name", "a\x00b"),
        ("skill_spec", "acme\trepo"),
        ("host", "warp\x1b[31m"),
        ("agent_name", "\u202enightly"),
        ("environment", " e1"),
    ],
    ids=repr,
)
def test_control_characters_in_attributes_are_refused(
    client: TestClient, orchestrator: dict[str, str], field: str, value: str
) -> None:
    response = create(client, orchestrator, run_id="r1", principal_uid="u1", **{field: value})

    assert response.status_code == 400
    assert value not in response.text
    assert client.get("/api/v1/runs/r1", headers=orchestrator).status_code == 404


def test_list_filters(client: TestClient, world: World, orchestrator: dict[str, str]) -> None:
    world.principal("u2", email="bob@example.com")
    layout = [
        ("a", "u1", "QUEUED", "e1"),
        ("b", "u2", "INPROGRESS", "e1"),
        ("c", "u1", "INPROGRESS", "e2"),
        ("d", "u2", "QUEUED", "e2"),
        ("e", "u1", "INPROGRESS", "e1"),
    ]
    for run_id, principal, state, environment in layout:
        response = create(
            client,
            orchestrator,
            run_id=run_id,
            principal_uid=principal,
            state=state,
            environment=environment,
        )
        assert response.status_code == 201, response.text

    assert run_ids(client, orchestrator) == ["e", "d", "c", "b", "a"]
    assert run_ids(client, orchestrator, state="INPROGRESS") == ["e", "c", "b"]
    assert run_ids(client, orchestrator, principal_uid="u2") == ["d", "b"]
    assert run_ids(client, orchestrator, environment="e2") == ["d", "c"]
    assert run_ids(client, orchestrator, state="QUEUED", environment="e1") == ["a"]
    assert run_ids(client, orchestrator, state="SUCCEEDED") == []


def test_get_an_unknown_run(client: TestClient, orchestrator: dict[str, str]) -> None:
    response = client.get("/api/v1/runs/nope", headers=orchestrator)
    assert response.status_code == 404
    assert response.json()["type"].endswith("/resource-not-found/")


def test_patch_moves_the_state(
    client: TestClient, clock: ManualClock, orchestrator: dict[str, str]
) -> None:
    created = create(client, orchestrator, **{**WIRE_RUN, "state": "QUEUED"}).json()
    for state in ("CLAIMED", "INPROGRESS", "SUCCEEDED"):
        clock.advance(timedelta(minutes=3))
        response = client.patch("/api/v1/runs/r1", json={"state": state}, headers=orchestrator)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == state
        assert at(response.json()["updated_at"]) == clock.now()
        assert response.json()["created_at"] == created["created_at"]
        assert client.get("/api/v1/runs/r1", headers=orchestrator).json()["state"] == state


@pytest.mark.parametrize("finished", FINISHED)
def test_a_finished_run_cannot_move(
    client: TestClient, orchestrator: dict[str, str], finished: str
) -> None:
    create(client, orchestrator, **WIRE_RUN)
    assert (
        client.patch("/api/v1/runs/r1", json={"state": finished}, headers=orchestrator).status_code
        == 200
    )

    for state in ("INPROGRESS", "QUEUED", *(s for s in FINISHED if s != finished)):
        response = client.patch("/api/v1/runs/r1", json={"state": state}, headers=orchestrator)
        assert response.status_code == 422, state
        assert response.json()["type"].endswith("/operation-not-supported/")
    assert client.get("/api/v1/runs/r1", headers=orchestrator).json()["state"] == finished


def test_an_unknown_state_is_refused(client: TestClient, orchestrator: dict[str, str]) -> None:
    create(client, orchestrator, **WIRE_RUN)
    response = client.patch("/api/v1/runs/r1", json={"state": "DONE"}, headers=orchestrator)
    assert response.status_code == 400
    assert client.get("/api/v1/runs/r1", headers=orchestrator).json()["state"] == "INPROGRESS"


def test_runs_need_the_runs_write_scope(
    client: TestClient, world: World, orchestrator: dict[str, str]
) -> None:
    create(client, orchestrator, **WIRE_RUN)
    federate = bearer(world.api_key("u1", scopes=("federate",)))

    for response in (
        create(client, federate, **{**WIRE_RUN, "run_id": "r2"}),
        client.get("/api/v1/runs", headers=federate),
        client.get("/api/v1/runs/r1", headers=federate),
        client.patch("/api/v1/runs/r1", json={"state": "CANCELLED"}, headers=federate),
    ):
        assert response.status_code == 403
        assert response.json()["type"].endswith("/not-authorized/")
    assert run_ids(client, world.admin) == ["r1"]
    assert client.get("/api/v1/runs/r1", headers=world.admin).json()["state"] == "INPROGRESS"
