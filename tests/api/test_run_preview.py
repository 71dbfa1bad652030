"""``POST /api/v1/runs/{run_id}/preview-token``: an operator's dry run for a run (the
console's Try it). The claims the run's principal would get, each subject component,
and whether the run's state lets a token be issued, with nothing signed or recorded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_errors import GCP, assert_problem
from tests.api.test_issue_token import audit_rows, payload_segment
from tests.support import World, bearer


def run_preview(world: World, run_id: str, key: str | None = None, **body: Any) -> Any:
    return world.client.post(
        f"/api/v1/runs/{run_id}/preview-token",
        json={"audience": "sts.amazonaws.com", **body},
        headers=bearer(key or world.admin_key),
    )


def test_an_operator_sees_the_claims_the_runs_principal_then_gets(world: World) -> None:
    agent = world.agent(teams=("t1",))
    body = {"subject_template": ["teams", "environment"], "duration": "15m"}
    world.principal("orch", email="orchestrator@example.com")
    operator = world.api_key("orch", scopes=("runs:write",))
    answer = run_preview(world, agent.run_id, operator, **body)
    assert answer.status_code == 200, answer.text
    previewed = answer.json()
    issued = world.issue(agent, **body).json()
    claims = payload_segment(issued["token"])
    # Same moment on the injected clock, same principal: only the jti differs.
    assert {**previewed["claims"], "jti": None} == {**claims, "jti": None}
    assert previewed["claims"]["sub"] == "teams:t1/environment:e1"
    assert previewed["claims"]["email"] == "ada@example.com"  # the run's principal's
    assert previewed["header"] == {"alg": "ES256", "typ": "JWT"}
    assert previewed["issuable"] is True
    assert previewed["refusal"] is None


def test_nothing_is_signed_or_recorded(world: World) -> None:
    agent = world.agent()
    assert run_preview(world, agent.run_id).status_code == 200
    assert audit_rows(world) == []


def test_each_component_rendered_for_the_run(world: World) -> None:
    agent = world.agent(skill_spec="acme/repo:deploy", host=None)
    components = run_preview(world, agent.run_id).json()["subject_components"]
    assert components == {
        "principal": f"user:{agent.uid}",
        "scoped_principal": f"scoped_principal:t1/user:{agent.uid}",
        "email": "email:ada@example.com",
        "teams": "teams:t1",
        "environment": "environment:e1",
        "agent_name": "agent_name:nightly",
        "skill_spec": "skill_spec:acme/repo%3Adeploy",
        "run_id": f"run_id:{agent.run_id}",
        "host": None,  # the run has none: issue-token refuses the component
    }


@pytest.mark.parametrize(
    ("state", "refusal"),
    [
        ("QUEUED", "is QUEUED; tokens are issued once it is claimed"),
        ("SUCCEEDED", "is SUCCEEDED; a finished run gets no tokens"),
    ],
)
def test_a_state_that_gets_no_tokens_is_reported_not_refused(
    world: World, state: str, refusal: str
) -> None:
    agent = world.agent(state=state)
    answer = run_preview(world, agent.run_id).json()
    assert answer["issuable"] is False
    assert refusal in answer["refusal"]
    assert answer["claims"]["sub"] == f"user:{agent.uid}"


def test_the_template_audience_and_duration_checks_still_refuse(world: World) -> None:
    agent = world.agent(host=None)
    missing = run_preview(world, agent.run_id, subject_template=["host"])
    assert_problem(missing, 400, "invalid_request")
    long = "x" * 120
    other = world.agent("u2", environment=long)
    too_long = run_preview(
        world, other.run_id, audience=GCP, subject_template=["environment", "run_id"]
    )
    assert_problem(too_long, 400, "invalid_request")
    unknown = run_preview(world, "no-such-run")
    assert_problem(unknown, 404, "resource_not_found")


def test_a_federate_key_may_not_preview_even_its_own_run(world: World) -> None:
    agent = world.agent()
    answer = run_preview(world, agent.run_id, agent.key)
    assert_problem(answer, 403, "not_authorized")
