"""401 and 403 through HTTP, the check order of docs/concepts.md, and that no answer echoes a
secret."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx2
import pytest

from federation.clock import ManualClock
from tests.api.test_errors import AWS, ISSUE, assert_problem, create_key, issue
from tests.support import Agent, World, bearer

UNKNOWN_KEY = "wk-" + "B" * 43  # well-formed, never issued


# ---- 401 authentication_required ------------------------------------------------------


def assert_401(response: httpx2.Response) -> None:
    # NOTE: no detail: one answer for every kind of bad key, so it is no oracle.
    assert_problem(response, 401, "authentication_required", detail=None)
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic dXNlcjpwYXNzd29yZA==",
        "Bearer",
        "Bearer not-a-key",
        "Bearer wk-tooshort",
        f"Bearer {UNKNOWN_KEY}",
        f"Token {UNKNOWN_KEY}",
    ],
)
@pytest.mark.parametrize("endpoint", ["whoami", "issue", "principals", "graphql"])
def test_no_valid_api_key(world: World, authorization: str | None, endpoint: str) -> None:
    agent = world.agent()

    def call(headers: dict[str, str]) -> httpx2.Response:
        headers = {**headers, "X-Warp-Ambient-Workload-Token": agent.workload_token}
        if endpoint == "whoami":
            return world.client.get("/api/v1/whoami", headers=headers)
        if endpoint == "principals":
            return world.client.get("/api/v1/principals", headers=headers)
        if endpoint == "graphql":
            query = "{ serverVersion }"
            return world.client.post("/graphql/v2", json={"query": query}, headers=headers)
        body = {"run_id": agent.run_id, "audience": AWS}
        return world.client.post(ISSUE, json=body, headers=headers)

    # The same request with the real key gets past authentication.
    assert call(bearer(agent.key)).status_code == (403 if endpoint == "principals" else 200)
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_401(call(headers))


def test_expired_key(world: World, clock: ManualClock) -> None:
    world.principal("u1")
    key = world.api_key("u1", expires_in="1d")
    assert world.client.get("/api/v1/whoami", headers=bearer(key)).status_code == 200
    clock.advance(timedelta(days=1) - timedelta(seconds=1))
    assert world.client.get("/api/v1/whoami", headers=bearer(key)).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert_401(world.client.get("/api/v1/whoami", headers=bearer(key)))


def test_expired_key_gets_no_token(world: World, clock: ManualClock) -> None:
    agent = world.agent()
    key = world.api_key(agent.uid, expires_in="1d")
    clock.advance(timedelta(days=2))
    assert_401(issue(world.client, key, agent.run_id, agent.workload_token))


@pytest.mark.parametrize("deleter", ["admin", "itself"])
def test_deleted_key_fails_on_the_very_next_request(world: World, deleter: str) -> None:
    agent = world.agent()
    key_id, key = create_key(world, agent.uid)
    assert issue(world.client, key, agent.run_id, agent.workload_token).status_code == 200
    by = world.admin if deleter == "admin" else bearer(key)
    deleted = world.client.delete(f"/api/v1/api-keys/{key_id}", headers=by)
    assert deleted.status_code == 204, deleted.text
    assert_401(issue(world.client, key, agent.run_id, agent.workload_token))
    assert_401(world.client.get("/api/v1/whoami", headers=bearer(key)))


# ---- 403 not_authorized ---------------------------------------------------------------


def test_key_without_the_federate_scope_gets_no_token(world: World) -> None:
    agent = world.agent()
    orchestrator = world.api_key(agent.uid, scopes=("runs:write",))
    response = issue(world.client, orchestrator, agent.run_id, agent.workload_token)
    assert_problem(response, 403, "not_authorized", detail="'federate'")


def test_federate_key_cannot_register_or_move_runs(world: World) -> None:
    agent = world.agent()
    created = world.client.post(
        "/api/v1/runs", json={"principal_uid": agent.uid}, headers=bearer(agent.key)
    )
    assert_problem(created, 403, "not_authorized", detail="'runs:write'")
    moved = world.client.patch(
        f"/api/v1/runs/{agent.run_id}", json={"state": "SUCCEEDED"}, headers=bearer(agent.key)
    )
    assert_problem(moved, 403, "not_authorized", detail="'runs:write'")
    assert world.issue(agent).status_code == 200  # the run was not moved


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/principals", None),
        ("POST", "/api/v1/principals", {"type": "user", "uid": "mallory", "teams": ["t1"]}),
        ("GET", "/api/v1/principals/u1", None),
        ("GET", "/api/v1/keys", None),
        ("POST", "/api/v1/keys/rotate", None),
        ("GET", "/api/v1/tokens", None),
    ],
)
@pytest.mark.parametrize("scope", ["federate", "runs:write"])
def test_non_admin_on_admin_endpoints(
    world: World, method: str, path: str, body: dict[str, Any] | None, scope: str
) -> None:
    world.principal("u1")
    key = world.api_key("u1", scopes=(scope,))
    response = world.client.request(method, path, json=body, headers=bearer(key))
    assert_problem(response, 403, "not_authorized", detail="'admin'")
    assert world.client.request(method, path, json=body, headers=world.admin).is_success


def test_non_admin_cannot_create_keys_for_someone_else(world: World) -> None:
    agent = world.agent()
    world.principal("u2")
    body = {"name": "theirs", "type": "personal", "principal_uid": "u2"}
    response = world.client.post("/api/v1/api-keys", json=body, headers=bearer(agent.key))
    assert_problem(response, 403, "not_authorized", detail="own personal keys")


def test_another_principals_run(world: World) -> None:
    owner = world.agent("u1")
    other = world.agent("u2")
    response = issue(world.client, other.key, owner.run_id, owner.workload_token)
    assert_problem(response, 403, "not_authorized", detail="belongs to another principal")


@pytest.mark.parametrize("workload_token", [None, "", "wlt-forged"])
def test_missing_or_bogus_workload_token(world: World, workload_token: str | None) -> None:
    agent = world.agent()
    response = issue(world.client, agent.key, agent.run_id, workload_token)
    assert_problem(response, 403, "not_authorized", detail="workload token")


def test_workload_token_of_another_run(world: World) -> None:
    agent = world.agent()
    other_run = world.run(agent.uid)
    response = issue(world.client, agent.key, agent.run_id, other_run["workload_token"])
    assert_problem(response, 403, "not_authorized", detail=f"not that of run {agent.run_id}")


@pytest.mark.parametrize("where", ["header", "body"])
def test_selecting_a_team_one_is_not_a_member_of(world: World, where: str) -> None:
    agent = world.agent(teams=("t1", "t2"))
    if where == "header":
        response = issue(
            world.client, agent.key, agent.run_id, agent.workload_token, {"X-Warp-Team-Uid": "t9"}
        )
    else:
        response = issue(world.client, agent.key, agent.run_id, agent.workload_token, team_uid="t9")
    assert_problem(response, 403, "not_authorized", detail="not a member of team t9")


# ---- the check order (docs/concepts.md, Who may get a token for a run) ---------------


def test_the_key_is_checked_first(world: World) -> None:
    agent = world.agent()
    assert_401(issue(world.client, UNKNOWN_KEY, "no-such-run"))
    assert_401(issue(world.client, UNKNOWN_KEY, agent.run_id, agent.workload_token))


def test_unknown_run_with_missing_workload_token_is_404(world: World) -> None:
    agent = world.agent()
    response = issue(world.client, agent.key, "no-such-run")
    assert_problem(response, 404, "resource_not_found", detail="no-such-run")


@pytest.mark.parametrize("state", ["INPROGRESS", "QUEUED", "SUCCEEDED"])
def test_foreign_run_is_refused_for_the_principal_first(world: World, state: str) -> None:
    world.agent("u1")
    other = world.agent("u2")
    run = world.run("u1", state=state)
    for workload_token in (None, run["workload_token"]):
        response = issue(world.client, other.key, run["run_id"], workload_token)
        problem = assert_problem(response, 403, "not_authorized", detail="another principal")
        assert "workload token" not in problem["detail"]


@pytest.mark.parametrize("state", ["QUEUED", "PENDING", "BLOCKED", "SUCCEEDED", "CANCELLED"])
def test_workload_token_is_checked_before_the_state(world: World, state: str) -> None:
    agent = world.agent()
    run = world.run(agent.uid, state=state)
    for workload_token in (None, agent.workload_token):
        response = issue(world.client, agent.key, run["run_id"], workload_token)
        assert_problem(response, 403, "not_authorized", detail="workload token")


def test_state_is_checked_before_the_team(world: World) -> None:
    agent = world.agent(teams=("t1", "t2"))
    run = world.run(agent.uid, state="QUEUED")
    template = ["scoped_principal"]
    response = issue(
        world.client, agent.key, run["run_id"], run["workload_token"], subject_template=template
    )
    assert_problem(response, 409, "conflict", retryable=True)
    claimed = world.client.patch(
        f"/api/v1/runs/{run['run_id']}", json={"state": "CLAIMED"}, headers=world.admin
    )
    assert claimed.status_code == 200, claimed.text
    response = issue(
        world.client, agent.key, run["run_id"], run["workload_token"], subject_template=template
    )
    assert_problem(response, 400, "invalid_request", detail="X-Warp-Team-Uid")


# ---- no answer echoes a secret --------------------------------------------------------

MARKER = "LeakCanary7f3a9c"
SECRET_KEY = "wk-" + (MARKER * 3)[:43]
GRAPHQL = (
    "mutation IssueTaskIdentityToken($input: IssueTaskIdentityTokenInput!) {"
    " issueTaskIdentityToken(requestContext: {osContext: {}, clientContext: {}}, input: $input)"
    " { __typename ... on IssueTaskIdentityTokenOutput { token } } }"
)


def _graphql(
    world: World,
    agent: Agent,
    headers: dict[str, str],
    input: dict[str, Any],
    query: str = GRAPHQL,
) -> httpx2.Response:
    return world.client.post(
        "/graphql/v2?op=IssueTaskIdentityToken",
        json={"query": query, "variables": {"input": {"audience": AWS, **input}}},
        headers={"X-Warp-Cloud-Agent-ID": agent.run_id, **agent.headers(), **headers},
    )


def _issue(world: World, agent: Agent, **body: Any) -> httpx2.Response:
    return issue(world.client, agent.key, agent.run_id, agent.workload_token, **body)


Leak = Callable[[World, Agent], httpx2.Response]
LEAKS: dict[str, Leak] = {
    "api key": lambda w, a: w.client.get("/api/v1/whoami", headers=bearer(SECRET_KEY)),
    "malformed api key": lambda w, a: w.client.get("/api/v1/whoami", headers=bearer(MARKER)),
    "api key on an unknown route": lambda w, a: w.client.get("/nope", headers=bearer(SECRET_KEY)),
    "workload token": lambda w, a: issue(w.client, a.key, a.run_id, f"wlt-{MARKER}"),
    "unknown body fields": lambda w, a: _issue(w, a, api_key=SECRET_KEY, workload_token=MARKER),
    "invalid body fields": lambda w, a: _issue(
        w, a, team_uid=f"{MARKER} x", algorithm=MARKER, requested_duration_seconds=MARKER
    ),
    "invalid audience": lambda w, a: _issue(w, a, audience=f"{MARKER} {MARKER}"),
    "principal body": lambda w, a: w.client.post(
        "/api/v1/principals",
        json={"type": "user", "uid": "u9", "password": MARKER},
        headers=w.admin,
    ),
    "key name": lambda w, a: w.client.post(
        "/api/v1/api-keys", json={"name": f"{MARKER}\n", "principal_uid": a.uid}, headers=w.admin
    ),
    "cursor": lambda w, a: w.client.get(f"/api/v1/tokens?cursor={MARKER}", headers=w.admin),
    "graphql api key": lambda w, a: _graphql(w, a, bearer(SECRET_KEY), {}),
    "graphql workload token": lambda w, a: _graphql(
        w, a, {"X-Warp-Ambient-Workload-Token": f"wlt-{MARKER}"}, {}
    ),
    "graphql unknown input field": lambda w, a: _graphql(w, a, {}, {"workloadToken": MARKER}),
    # graphql-core shortens long strings and escapes newlines when it quotes them.
    "graphql long input value": lambda w, a: _graphql(w, a, {}, {"workloadToken": MARKER * 20}),
    "graphql multi-line input value": lambda w, a: _graphql(
        w, a, {}, {"workloadToken": f"-----BEGIN KEY-----\n{MARKER}\n-----END KEY-----"}
    ),
    "graphql invalid input value": lambda w, a: _graphql(
        w, a, {}, {"requestedDurationSeconds": MARKER}
    ),
    "graphql invalid literal": lambda w, a: _graphql(
        w,
        a,
        {},
        {},
        "mutation { issueTaskIdentityToken(input: "
        f'{{audience: "{AWS}", requestedDurationSeconds: "{MARKER}"}}) {{ __typename }} }}',
    ),
    "graphql multi-line literal": lambda w, a: _graphql(
        w,
        a,
        {},
        {},
        "mutation { issueTaskIdentityToken(input: "
        f'{{audience: "{AWS}", requestedDurationSeconds: "x\\n{MARKER}"}}) {{ __typename }} }}',
    ),
}


@pytest.mark.parametrize("case", list(LEAKS))
def test_no_answer_echoes_a_secret(world: World, case: str) -> None:
    agent = world.agent()
    response = LEAKS[case](world, agent)
    refused = response.status_code >= 400 or '"errors"' in response.text
    assert refused or "UserFacingError" in response.text, response.text
    assert MARKER not in response.text
    for name, value in response.headers.items():
        assert MARKER not in value, name
