"""Every error code of docs/reference/errors.md, provoked through HTTP, with the whole
problem body.

Here: the problem shape, trace ids, 400, 404, 405, 409 and 422. Access errors (401, 403,
the check order of docs/concepts.md, secrets) are in ``test_errors_access.py``; 503 and 500
in ``test_errors_server.py``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from federation.errors import (
    AuthenticationRequired,
    Conflict,
    InternalError,
    InvalidRequest,
    NotAuthorized,
    OperationNotSupported,
    ResourceNotFound,
    ResourceUnavailable,
)
from tests.support import World, bearer

ISSUE = "/api/v1/federate/issue-token"
AWS = "sts.amazonaws.com"
GCP = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"
PROBLEM_MEMBERS = {
    "type",
    "title",
    "status",
    "detail",
    "instance",
    "error",
    "retryable",
    "trace_id",
}
TRACE_ID = re.compile(r"[0-9a-f]{32}")
TITLES = {
    error.code: error.title
    for error in (
        InvalidRequest,
        AuthenticationRequired,
        NotAuthorized,
        ResourceNotFound,
        Conflict,
        OperationNotSupported,
        ResourceUnavailable,
        InternalError,
    )
}
# The title Oz documents for the code (its "Errors Overview" page).
OZ_INVALID_REQUEST_TITLE = "The request contains invalid or missing parameters."


def assert_problem(
    response: httpx2.Response,
    status: int,
    code: str,
    *,
    retryable: bool = False,
    detail: str | None = "",
) -> dict[str, Any]:
    """The whole Oz problem body. ``detail`` must occur in the body's; ``None``: no detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) <= PROBLEM_MEMBERS
    assert (
        body["type"] == f"/reference/api-and-sdk/troubleshooting/errors/{code.replace('_', '-')}/"
    )
    assert body["title"] == TITLES[code]
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["retryable"] is retryable
    assert TRACE_ID.fullmatch(body["trace_id"])
    if detail is None:
        assert "detail" not in body
        assert body["error"] == body["title"]
    else:
        assert detail in body["detail"], body["detail"]
        assert body["error"] == f"{body['title']} ({body['detail']})"
    return body


def issue(
    client: TestClient,
    key: str,
    run_id: str,
    workload_token: str | None = None,
    headers: dict[str, str] | None = None,
    /,
    **body: Any,
) -> httpx2.Response:
    """Issue-token as ``key``; ``body`` adds to (or overrides) run_id and audience."""
    sent = bearer(key)
    if workload_token is not None:
        sent["X-Warp-Ambient-Workload-Token"] = workload_token
    payload = {"run_id": run_id, "audience": AWS, **body}
    return client.post(ISSUE, json=payload, headers={**sent, **(headers or {})})


def audit_rows(world: World) -> list[dict[str, Any]]:
    listed = world.client.get("/api/v1/tokens", headers=world.admin)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


# ---- trace ids ----------------------------------------------------------------------


def test_traceparent_trace_id_is_echoed(client: TestClient) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = client.get(
        "/no/such/route", headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}
    )
    assert assert_problem(response, 404, "resource_not_found")["trace_id"] == trace


def test_the_oz_clients_trace_header_gives_the_trace_id(client: TestClient) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    headers = {"X-Warp-Traceparent": f"00-{trace}-b7ad6b7169203331-01"}
    response = client.get("/no/such/route", headers=headers)
    assert assert_problem(response, 404, "resource_not_found")["trace_id"] == trace


def test_traceparent_wins_over_the_oz_clients_trace_header(client: TestClient) -> None:
    trace, other = "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"
    headers = {
        "X-Warp-Traceparent": f"00-{other}-b7ad6b7169203331-01",
        "traceparent": f"00-{trace}-00f067aa0ba902b7-01",
    }
    response = client.get("/no/such/route", headers=headers)
    assert assert_problem(response, 404, "resource_not_found")["trace_id"] == trace


@pytest.mark.parametrize(
    "traceparent",
    [None, "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "not-a-traceparent"],
)
def test_without_a_valid_traceparent_each_answer_gets_a_fresh_trace_id(
    client: TestClient, traceparent: str | None
) -> None:
    headers = {"traceparent": traceparent} if traceparent else {}
    first = assert_problem(client.get("/nowhere", headers=headers), 404, "resource_not_found")
    second = assert_problem(client.get("/nowhere", headers=headers), 404, "resource_not_found")
    assert first["trace_id"] != second["trace_id"]
    assert first["trace_id"] != "0" * 32


# ---- 400 invalid_request --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"bogus": "x"}, "bogus"),
        ({"run_id": None}, "run_id"),
        ({"audience": ""}, "audience"),
        ({"duration": "1m1h"}, "duration"),
        ({"duration": "soon"}, "such as 15m"),
        ({"duration": "30s"}, "below the minimum of 1m"),
        ({"requested_duration_seconds": 59}, "below the minimum of 1m"),
        ({"requested_duration_seconds": "an hour"}, "requested_duration_seconds"),
        ({"duration": "15m", "requested_duration_seconds": 900}, "not both"),
        ({"subject_template": []}, "at least one"),
        ({"algorithm": "HS256"}, "algorithm"),
        ({"team_uid": "t 1"}, "team_uid"),
    ],
)
def test_invalid_issue_token_bodies(world: World, body: dict[str, Any], detail: str) -> None:
    agent = world.agent()
    response = issue(world.client, agent.key, agent.run_id, agent.workload_token, **body)
    problem = assert_problem(response, 400, "invalid_request", detail=detail)
    assert problem["title"] == OZ_INVALID_REQUEST_TITLE
    assert audit_rows(world) == []


def test_malformed_json_body(world: World) -> None:
    agent = world.agent()
    response = world.client.post(
        ISSUE,
        content=b'{"run_id": "r1", "audience": ',
        headers={**agent.headers(), "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "invalid_request", detail="not valid JSON")


def test_unknown_subject_template_component_names_the_valid_ones(world: World) -> None:
    agent = world.agent()
    response = world.issue(agent, subject_template=["principal", "planet"])
    problem = assert_problem(response, 400, "invalid_request", detail="planet")
    valid = ["principal", "scoped_principal", "email", "teams", "environment", "agent_name"]
    for component in [*valid, "skill_spec", "run_id", "host"]:
        assert component in problem["detail"]


def test_component_without_a_value_is_refused_not_rendered_empty(world: World) -> None:
    agent = world.agent(environment=None)
    response = world.issue(agent, subject_template=["teams", "environment"])
    assert_problem(response, 400, "invalid_request", detail="'environment' has no value")
    assert world.issue(agent, subject_template=["teams"]).status_code == 200


def test_subject_too_long_for_a_gcp_audience(world: World) -> None:
    agent = world.agent(agent_name="a" * 120)  # agent_name:aaa... is 131 bytes
    template = ["agent_name"]
    response = world.issue(agent, audience=GCP, subject_template=template)
    assert_problem(response, 400, "invalid_request", detail="127 bytes")
    # The limit is GCP's: the same subject is fine for AWS.
    assert world.issue(agent, subject_template=template).status_code == 200


def test_subject_too_long_for_any_audience(world: World) -> None:
    agent = world.agent(agent_name="a" * 250)
    response = world.issue(agent, subject_template=["agent_name"])
    assert_problem(response, 400, "invalid_request", detail="255 bytes")


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor is not valid"),
        ("cursor=%21%21%21", "cursor is not valid"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/tokens", "/api/v1/runs", "/api/v1/principals"])
def test_bad_paging_parameters(world: World, path: str, query: str, detail: str) -> None:
    assert world.client.get(f"{path}?limit=500", headers=world.admin).status_code == 200
    response = world.client.get(f"{path}?{query}", headers=world.admin)
    assert_problem(response, 400, "invalid_request", detail=detail)


# ---- 404 resource_not_found, 405 -----------------------------------------------------


def test_unknown_run(world: World) -> None:
    agent = world.agent()
    response = issue(world.client, agent.key, "no-such-run", agent.workload_token)
    assert_problem(response, 404, "resource_not_found", detail="run no-such-run not found")
    path = "/api/v1/runs/no-such-run"
    assert_problem(world.client.get(path, headers=world.admin), 404, "resource_not_found")
    moved = world.client.patch(path, json={"state": "FAILED"}, headers=world.admin)
    assert_problem(moved, 404, "resource_not_found", detail="run no-such-run not found")


def test_unknown_principal(world: World) -> None:
    response = world.client.get("/api/v1/principals/nobody", headers=world.admin)
    assert_problem(response, 404, "resource_not_found", detail="principal nobody not found")
    run = world.client.post("/api/v1/runs", json={"principal_uid": "nobody"}, headers=world.admin)
    assert_problem(run, 404, "resource_not_found", detail="nobody")


@pytest.mark.parametrize("path", ["/nowhere", "/api/v1/nothing", "/api/v2/federate/issue-token"])
def test_unknown_route_needs_no_key_and_is_a_problem(client: TestClient, path: str) -> None:
    assert_problem(client.get(path), 404, "resource_not_found")


def create_key(world: World, principal_uid: str) -> tuple[str, str]:
    """(id, raw key) of a new personal federate key."""
    body = {"name": "mine", "type": "personal", "principal_uid": principal_uid}
    created = world.client.post("/api/v1/api-keys", json=body, headers=world.admin)
    assert created.status_code == 201, created.text
    return str(created.json()["id"]), str(created.json()["key"])


def test_deleting_someone_elses_api_key_answers_404_like_a_missing_one(world: World) -> None:
    world.principal("u1")
    world.principal("u2")
    _, mine = create_key(world, "u1")
    theirs_id, theirs = create_key(world, "u2")
    foreign = world.client.delete(f"/api/v1/api-keys/{theirs_id}", headers=bearer(mine))
    assert_problem(foreign, 404, "resource_not_found", detail=f"API key {theirs_id} not found")
    missing = world.client.delete("/api/v1/api-keys/ak_0000000000000000", headers=bearer(mine))
    assert_problem(missing, 404, "resource_not_found", detail="API key ak_0000000000000000")
    assert world.client.get("/api/v1/whoami", headers=bearer(theirs)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", ISSUE, {"POST"}),
        ("GET", ISSUE, {"POST"}),
        ("POST", "/.well-known/jwks.json", {"GET", "HEAD"}),
        ("DELETE", "/.well-known/openid-configuration", {"GET", "HEAD"}),
        ("GET", "/graphql/v2", {"POST"}),
        ("DELETE", "/api/v1/runs/r1", {"GET", "PATCH"}),
        ("PUT", "/api/v1/api-keys", {"GET", "POST"}),
        ("DELETE", "/api/v1/principals", {"GET", "POST"}),
    ],
)
def test_wrong_method(world: World, method: str, path: str, allowed: set[str]) -> None:
    response = world.client.request(method, path, headers=world.admin)
    problem = assert_problem(response, 405, "operation_not_supported", detail=method)
    assert {part.strip() for part in response.headers["Allow"].split(",")} == allowed
    assert problem["status"] == 405


# ---- 409 conflict, 422 operation_not_supported ------------------------------------------


@pytest.mark.parametrize("state", ["QUEUED", "PENDING", "BLOCKED"])
def test_waiting_run_is_a_retryable_conflict(world: World, state: str) -> None:
    agent = world.agent()
    run = world.run(agent.uid, state=state)
    response = issue(world.client, agent.key, run["run_id"], run["workload_token"])
    assert_problem(response, 409, "conflict", retryable=True, detail=state)
    claimed = world.client.patch(
        f"/api/v1/runs/{run['run_id']}", json={"state": "CLAIMED"}, headers=world.admin
    )
    assert claimed.status_code == 200, claimed.text
    retried = issue(world.client, agent.key, run["run_id"], run["workload_token"])
    assert retried.status_code == 200, retried.text


def test_duplicate_principal_and_run_are_not_retryable_conflicts(world: World) -> None:
    world.principal("u1")
    again = {"type": "user", "uid": "u1", "teams": ["t1"]}
    response = world.client.post("/api/v1/principals", json=again, headers=world.admin)
    assert_problem(response, 409, "conflict", retryable=False, detail="u1 already exists")
    world.run("u1", run_id="r1")
    duplicate = {"run_id": "r1", "principal_uid": "u1"}
    response = world.client.post("/api/v1/runs", json=duplicate, headers=world.admin)
    assert_problem(response, 409, "conflict", retryable=False, detail="r1 already exists")


@pytest.mark.parametrize("state", ["SUCCEEDED", "FAILED", "ERROR", "CANCELLED"])
def test_finished_run_gets_no_token(world: World, state: str) -> None:
    agent = world.agent()
    assert world.issue(agent).status_code == 200
    moved = world.client.patch(
        f"/api/v1/runs/{agent.run_id}", json={"state": state}, headers=world.admin
    )
    assert moved.status_code == 200, moved.text
    assert_problem(world.issue(agent), 422, "operation_not_supported", detail=state)


@pytest.mark.parametrize("target", ["INPROGRESS", "QUEUED", "FAILED"])
def test_finished_run_cannot_change_state(world: World, target: str) -> None:
    agent = world.agent()
    path = f"/api/v1/runs/{agent.run_id}"
    assert world.client.patch(path, json={"state": "SUCCEEDED"}, headers=world.admin).is_success
    response = world.client.patch(path, json={"state": target}, headers=world.admin)
    assert_problem(response, 422, "operation_not_supported", detail="SUCCEEDED")
    assert world.client.get(path, headers=world.admin).json()["state"] == "SUCCEEDED"
