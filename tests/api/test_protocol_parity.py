"""REST and GraphQL reach one issuing pipeline: for the same request they accept and
refuse alike, with the same Oz codes, and every accepted request leaves one audit row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from federation.store import Store
from federation.store.models import IssuedToken
from tests.support import Agent, World

REST = "/api/v1/federate/issue-token"
GRAPHQL = "/graphql/v2"
MUTATION = """
mutation Issue($input: IssueTaskIdentityTokenInput!) {
  issueTaskIdentityToken(input: $input, requestContext: {clientContext: {}, osContext: {}}) {
    __typename
    ... on IssueTaskIdentityTokenOutput { token }
    ... on UserFacingError {
      error { __typename ... on PlatformError { info { code } } }
    }
  }
}
"""


def _rest(client: TestClient, headers: dict[str, str], run_id: str, body: dict[str, Any]) -> str:
    response = client.post(REST, json={"run_id": run_id, **body}, headers=headers)
    if response.status_code == 200:
        return "ok"
    return str(response.json()["type"]).rstrip("/").rsplit("/", 1)[-1].replace("-", "_")


def _graphql(client: TestClient, headers: dict[str, str], run_id: str, body: dict[str, Any]) -> str:
    names = {"requested_duration_seconds": "requestedDurationSeconds"}
    names["subject_template"] = "subjectTemplate"
    graph_input = {names.get(name, name): value for name, value in body.items()}
    response = client.post(
        GRAPHQL,
        json={"query": MUTATION, "variables": {"input": graph_input}},
        headers={**headers, "X-Warp-Cloud-Agent-ID": run_id},
    )
    if response.status_code != 200:  # the API key: a 401 problem, as everywhere
        return str(response.json()["type"]).rstrip("/").rsplit("/", 1)[-1].replace("-", "_")
    result = response.json()["data"]["issueTaskIdentityToken"]
    if result["__typename"] == "IssueTaskIdentityTokenOutput":
        return "ok"
    error = result["error"]
    if error["__typename"] == "InvalidInputError":
        return "invalid_request"
    return str(error["info"]["code"]).lower()


Case = Callable[[World, Agent], tuple[dict[str, str], str, dict[str, Any]]]
AWS = {"audience": "sts.amazonaws.com"}


def _case(
    headers: Callable[[World, Agent], dict[str, str]] = lambda _, agent: agent.headers(),
    run: Callable[[World, Agent], str] = lambda _, agent: agent.run_id,
    body: dict[str, Any] | None = None,
) -> Case:
    return lambda world, agent: (headers(world, agent), run(world, agent), body or AWS)


def _other_run(world: World, agent: Agent) -> str:
    return world.agent("u2").run_id


def _run_in(state: str) -> Case:
    """The agent's own run, moved to ``state``, with its workload token."""

    def made(world: World, agent: Agent) -> tuple[dict[str, str], str, dict[str, Any]]:
        moved = world.client.patch(
            f"/api/v1/runs/{agent.run_id}", json={"state": state}, headers=world.admin
        )
        assert moved.status_code == 200, moved.text
        return agent.headers(), agent.run_id, AWS

    return made


CASES: dict[str, tuple[Case, str]] = {
    "issued": (_case(), "ok"),
    "unknown key": (
        _case(headers=lambda _, agent: agent.headers(Authorization="Bearer wk-" + "A" * 43)),
        "authentication_required",
    ),
    "runs:write key": (
        _case(
            headers=lambda world, agent: agent.headers(
                Authorization="Bearer " + world.api_key(agent.uid, scopes=("runs:write",))
            )
        ),
        "not_authorized",
    ),
    "unknown run": (_case(run=lambda *_: "no-such-run"), "resource_not_found"),
    "another principal's run": (_case(run=_other_run), "not_authorized"),
    "no workload token": (
        _case(headers=lambda _, agent: {"Authorization": f"Bearer {agent.key}"}),
        "not_authorized",
    ),
    "wrong workload token": (
        _case(
            headers=lambda _, agent: agent.headers(
                **{"X-Warp-Ambient-Workload-Token": "wlt-" + "B" * 43}
            )
        ),
        "not_authorized",
    ),
    "queued run": (_run_in("QUEUED"), "conflict"),
    "finished run": (_run_in("SUCCEEDED"), "operation_not_supported"),
    "unknown component": (
        _case(body={**AWS, "subject_template": ["nope"]}),
        "invalid_request",
    ),
    "component past the input limit": (
        _case(body={**AWS, "subject_template": ["x" * 65]}),
        "invalid_request",
    ),
    "audience with a space": (_case(body={"audience": "a b"}), "invalid_request"),
    "audience past the input limit": (_case(body={"audience": "a" * 257}), "invalid_request"),
    "too short": (_case(body={**AWS, "requested_duration_seconds": 5}), "invalid_request"),
    "team component": (
        _case(body={**AWS, "subject_template": ["teams", "environment"]}),
        "ok",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rest_and_graphql_answer_alike(world: World, store: Store, name: str) -> None:
    case, expected = CASES[name]
    agent = world.agent()
    headers, run_id, body = case(world, agent)
    rest = _rest(world.client, headers, run_id, body)
    graph = _graphql(world.client, headers, run_id, body)
    assert (rest, graph) == (expected, expected)
    with store.session() as session:
        audited = session.scalar(select(func.count()).select_from(IssuedToken))
    assert audited == (2 if expected == "ok" else 0)
