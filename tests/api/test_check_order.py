"""Request conflicts answer only after the checks that come before the run's state
(docs/concepts.md, Who may get a token for a run); a wrong workload token is refused
even where none is required."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from federation.clock import ManualClock
from tests.api.test_issue_token import custom_world
from tests.support import World, bearer


def test_conflicting_fields_answer_after_the_scope_and_the_run(
    world: World, client: TestClient
) -> None:
    agent = world.agent()
    both = {"duration": "1h", "requested_duration_seconds": 60}
    runs_only = world.api_key("u1", scopes=("runs:write",), name="orchestrator")
    response = client.post(
        "/api/v1/federate/issue-token",
        json={"run_id": agent.run_id, "audience": "sts", **both},
        headers={**bearer(runs_only), "X-Warp-Ambient-Workload-Token": agent.workload_token},
    )
    assert response.status_code == 403  # the scope first

    response = client.post(
        "/api/v1/federate/issue-token",
        json={"run_id": "no-such-run", "audience": "sts", "team_uid": "t1"},
        headers={**agent.headers(), "X-Warp-Team-Uid": "t2"},
    )
    assert response.status_code == 404  # then the run

    assert world.issue(agent, **both).status_code == 400  # and only then the request


def test_a_wrong_workload_token_is_refused_even_when_none_is_required(
    tmp_path: Path, clock: ManualClock
) -> None:
    with custom_world(tmp_path, clock, require_workload_token=False) as world:
        agent = world.agent()
        body = {"run_id": agent.run_id, "audience": "sts.amazonaws.com"}
        without = world.client.post(
            "/api/v1/federate/issue-token", json=body, headers=bearer(agent.key)
        )
        assert without.status_code == 200
        wrong = world.client.post(
            "/api/v1/federate/issue-token",
            json=body,
            headers={**bearer(agent.key), "X-Warp-Ambient-Workload-Token": "wlt-not-this-one"},
        )
        assert wrong.status_code == 403
