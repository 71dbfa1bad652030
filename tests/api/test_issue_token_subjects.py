"""Issue-token subjects and teams: templates, hostile run attributes, team selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from federation.clock import ManualClock
from tests.api.test_issue_token import ISSUE, STS, audit_rows, custom_world, issued, verify
from tests.support import World

GCP = (
    "//iam.googleapis.com/projects/123456789/locations/global/"
    "workloadIdentityPools/agents/providers/federation"
)


def subject_of(world: World, clock: ManualClock, response: httpx2.Response) -> str:
    body = issued(response)
    claims = verify(world.client, body["token"], audience=body["audience"][0], at=clock.now())
    assert claims["sub"] == body["subject"]
    return str(claims["sub"])


@pytest.mark.parametrize(
    ("template", "subject"),
    [
        (None, "user:u1"),
        (["principal"], "user:u1"),
        (["scoped_principal"], "scoped_principal:t1/user:u1"),
        (["email"], "email:ada@example.com"),
        (["teams"], "teams:t1"),
        (["environment"], "environment:e1"),
        (["agent_name"], "agent_name:nightly"),
        (["skill_spec"], "skill_spec:acme/repo%3Adeploy"),
        (["host"], "host:warp"),
        (["teams", "environment"], "teams:t1/environment:e1"),
        (["environment", "teams"], "environment:e1/teams:t1"),
        (["principal", "host", "agent_name"], "user:u1/host:warp/agent_name:nightly"),
    ],
)
def test_subject_template_renders_as_designed(
    world: World, clock: ManualClock, template: list[str] | None, subject: str
) -> None:
    extra = {} if template is None else {"subject_template": template}
    assert subject_of(world, clock, world.issue(world.agent(), **extra)) == subject


def test_run_id_component_names_the_run(world: World, clock: ManualClock) -> None:
    agent = world.agent(run_id="run-42.a")
    response = world.issue(agent, subject_template=["run_id", "principal"])
    assert subject_of(world, clock, response) == "run_id:run-42.a/user:u1"


def test_scoped_principal_of_a_service_account(world: World, clock: ManualClock) -> None:
    agent = world.agent("sa1", type="service_account", teams=("team9",), email=None)
    response = world.issue(agent, subject_template=["scoped_principal"])
    assert subject_of(world, clock, response) == "scoped_principal:team9/service_account:sa1"


def test_scoped_principal_of_a_user_without_a_team(
    world: World, client: TestClient, clock: ManualClock
) -> None:
    agent = world.agent(teams=())
    body = issued(world.issue(agent, subject_template=["scoped_principal"]))

    claims = verify(client, body["token"], audience=STS, at=clock.now())
    assert claims["sub"] == "scoped_principal:user:u1"
    assert "teams" not in claims


@pytest.mark.parametrize(
    ("attributes", "template", "subject"),
    [
        (
            {"agent_name": "x/environment:prod"},
            ["agent_name", "environment"],
            "agent_name:x/environment%3Aprod/environment:e1",
        ),
        ({"agent_name": "50%:off"}, ["agent_name"], "agent_name:50%25%3Aoff"),
        ({"agent_name": "a%3Ab"}, ["agent_name"], "agent_name:a%253Ab"),
        ({"environment": "prod:eu/west"}, ["environment"], "environment:prod%3Aeu/west"),
        ({"host": "worker:7"}, ["host"], "host:worker%3A7"),
        (
            {"skill_spec": "warpdotdev/repo_path_to_skill"},
            ["skill_spec"],
            "skill_spec:warpdotdev/repo_path_to_skill",
        ),
    ],
)
def test_run_attributes_cannot_fake_subject_structure(
    world: World,
    client: TestClient,
    clock: ManualClock,
    attributes: dict[str, Any],
    template: list[str],
    subject: str,
) -> None:
    agent = world.agent(**attributes)
    body = issued(world.issue(agent, subject_template=template))

    claims = verify(client, body["token"], audience=STS, at=clock.now())
    assert claims["sub"] == body["subject"] == subject
    for name, value in attributes.items():
        assert claims[name] == value  # the claim itself keeps the value as it is


def test_another_separator_is_encoded_inside_values(tmp_path: Path, clock: ManualClock) -> None:
    with custom_world(tmp_path, clock, subject_separator="|") as other:
        agent = other.agent(agent_name="a|b/c:d")
        response = other.issue(agent, subject_template=["teams", "agent_name", "environment"])
        assert (
            subject_of(other, clock, response) == "teams:t1|agent_name:a%7Cb/c%3Ad|environment:e1"
        )


def test_a_component_the_run_lacks_is_refused_not_rendered_empty(world: World) -> None:
    agent = world.agent()
    bare = world.run(agent.uid)
    response = world.client.post(
        ISSUE,
        json={"run_id": bare["run_id"], "audience": STS, "subject_template": ["environment"]},
        headers={**agent.headers(), "X-Warp-Ambient-Workload-Token": bare["workload_token"]},
    )

    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-request/")
    assert audit_rows(world, run_id=bare["run_id"]) == []


def test_a_subject_too_long_for_gcp_is_refused_but_fits_elsewhere(
    world: World, clock: ManualClock
) -> None:
    agent = world.agent(agent_name="n" * 120)
    template = ["agent_name"]

    refused = world.issue(agent, audience=GCP, subject_template=template)
    assert refused.status_code == 400
    assert "127" in refused.json()["detail"]
    assert subject_of(world, clock, world.issue(agent, subject_template=template)) == (
        "agent_name:" + "n" * 120
    )


# ---- team selection -------------------------------------------------------------------


def teams_token(
    world: World, clock: ManualClock, response: httpx2.Response
) -> tuple[list[str], str]:
    body = issued(response)
    claims = verify(world.client, body["token"], audience=STS, at=clock.now())
    return list(claims["teams"]), str(claims["sub"])


def test_several_teams_need_a_selection_for_a_team_template(world: World) -> None:
    agent = world.agent(teams=("t1", "t2"))
    response = world.issue(agent, subject_template=["scoped_principal"])

    assert response.status_code == 400
    assert "X-Warp-Team-Uid" in response.json()["detail"]


def test_team_selected_by_header(world: World, clock: ManualClock) -> None:
    agent = world.agent(teams=("t1", "t2"))
    response = world.client.post(
        ISSUE,
        json={"run_id": agent.run_id, "audience": STS, "subject_template": ["scoped_principal"]},
        headers=agent.headers(**{"X-Warp-Team-Uid": "t2"}),
    )
    assert teams_token(world, clock, response) == (["t2"], "scoped_principal:t2/user:u1")
    assert audit_rows(world, run_id=agent.run_id)[0]["team_uid"] == "t2"


def test_team_selected_in_the_body(world: World, clock: ManualClock) -> None:
    agent = world.agent(teams=("t1", "t2"))
    response = world.issue(agent, team_uid="t2", subject_template=["teams"])
    assert teams_token(world, clock, response) == (["t2"], "teams:t2")


def test_the_same_team_in_header_and_body_is_accepted(world: World, clock: ManualClock) -> None:
    agent = world.agent(teams=("t1", "t2"))
    response = world.client.post(
        ISSUE,
        json={"run_id": agent.run_id, "audience": STS, "team_uid": "t1"},
        headers=agent.headers(**{"X-Warp-Team-Uid": "t1"}),
    )
    assert teams_token(world, clock, response) == (["t1"], "user:u1")


def test_the_runs_team_wins_without_a_selection(world: World, clock: ManualClock) -> None:
    agent = world.agent(teams=("t1", "t2"), team_uid="t2")
    response = world.issue(agent, subject_template=["scoped_principal"])
    assert teams_token(world, clock, response) == (["t2"], "scoped_principal:t2/user:u1")


def test_a_selection_agreeing_with_the_runs_team_is_accepted(
    world: World, clock: ManualClock
) -> None:
    agent = world.agent(teams=("t1", "t2"), team_uid="t2")
    response = world.issue(agent, team_uid="t2", subject_template=["teams"])
    assert teams_token(world, clock, response) == (["t2"], "teams:t2")


def test_a_selection_conflicting_with_the_runs_team_is_refused(world: World) -> None:
    agent = world.agent(teams=("t1", "t2"), team_uid="t2")
    response = world.issue(agent, team_uid="t1", subject_template=["teams"])

    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-request/")
    assert audit_rows(world, run_id=agent.run_id) == []


def test_header_and_body_naming_different_teams_are_refused(world: World) -> None:
    agent = world.agent(teams=("t1", "t2"))
    response = world.client.post(
        ISSUE,
        json={"run_id": agent.run_id, "audience": STS, "team_uid": "t1"},
        headers=agent.headers(**{"X-Warp-Team-Uid": "t2"}),
    )

    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-request/")


def test_a_team_the_principal_is_not_in_is_refused(world: World) -> None:
    agent = world.agent(teams=("t1", "t2"))
    response = world.client.post(
        ISSUE,
        json={"run_id": agent.run_id, "audience": STS, "subject_template": ["teams"]},
        headers=agent.headers(**{"X-Warp-Team-Uid": "t3"}),
    )

    assert response.status_code == 403
    assert response.json()["type"].endswith("/not-authorized/")
    assert audit_rows(world, run_id=agent.run_id) == []
