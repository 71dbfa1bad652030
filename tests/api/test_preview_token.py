"""``POST /api/v1/federate/preview-token``: every check of issue-token, and the claims it
would sign, with nothing signed and nothing recorded."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.test_issue_token import audit_rows, payload_segment
from tests.support import Agent, World

PREVIEW = "/api/v1/federate/preview-token"


def preview(world: World, agent: Agent, **body: Any) -> Any:
    payload = {"run_id": agent.run_id, "audience": "sts.amazonaws.com", **body}
    return world.client.post(PREVIEW, json=payload, headers=agent.headers())


def test_the_preview_holds_the_claims_the_token_then_carries(world: World) -> None:
    agent = world.agent(teams=("t1",))
    body = {"subject_template": ["teams", "environment"], "aws_session_tags": ["environment"]}
    previewed = preview(world, agent, **body)
    assert previewed.status_code == 200, previewed.text
    answer = previewed.json()
    issued = world.issue(agent, **body).json()
    claims = payload_segment(issued["token"])
    # Same moment on the injected clock: only the jti differs.
    assert {**answer["claims"], "jti": None} == {**claims, "jti": None}
    assert answer["claims"]["sub"] == "teams:t1/environment:e1"
    assert answer["header"] == {"alg": "ES256", "typ": "JWT"}


def test_entra_previews_rs256(world: World) -> None:
    agent = world.agent()
    answer = preview(world, agent, audience="api://AzureADTokenExchange").json()
    assert answer["header"]["alg"] == "RS256"


def test_a_preview_is_not_audited(world: World) -> None:
    agent = world.agent()
    assert preview(world, agent).status_code == 200
    assert audit_rows(world, run_id=agent.run_id) == []


def test_a_preview_makes_every_check_of_issue_token(world: World, client: TestClient) -> None:
    agent = world.agent()
    payload = {"run_id": agent.run_id, "audience": "sts.amazonaws.com"}
    no_workload = client.post(
        PREVIEW, json=payload, headers={"Authorization": f"Bearer {agent.key}"}
    )
    assert no_workload.status_code == 403
    assert no_workload.headers["content-type"] == "application/problem+json"
    other = world.agent("u2")
    stolen = client.post(PREVIEW, json=payload, headers=other.headers())
    assert stolen.status_code == 403
    bad_template = preview(world, agent, subject_template=["nope"])
    assert bad_template.status_code == 400
    assert "unknown subject template component" in bad_template.json()["detail"]
    unauthenticated = client.post(PREVIEW, json=payload)
    assert unauthenticated.status_code == 401
