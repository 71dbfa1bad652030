"""``POST /graphql/v2``: the ``issueTaskIdentityToken`` mutation as the Oz CLI and worker
send it (the worker's request, the CLI's test request), with tokens verified by PyJWT.
The Oz client's own operation and the schema's fidelity: ``test_oz_client.py``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from federation import __version__
from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.settings import Settings
from federation.store import Store
from tests.conftest import make_settings
from tests.support import Agent, World, bearer

URL = "/graphql/v2?op=IssueTaskIdentityToken"
AWS = "sts.amazonaws.com"
# A mutation of the CLI's shape, with an inline request context and our PlatformError's
# fields (the Oz client's exact operation is in test_oz_client.py).
CLI_MUTATION = """
mutation IssueTaskIdentityToken($input: IssueTaskIdentityTokenInput!) {
  issueTaskIdentityToken(requestContext: {osContext: {}, clientContext: {}}, input: $input) {
    __typename
    ... on IssueTaskIdentityTokenOutput {
      token
      expiresAt
      issuer
      responseContext { serverVersion }
    }
    ... on UserFacingError {
      error {
        __typename
        message
        ... on PlatformError { detail info { code retryable } }
      }
      responseContext { serverVersion }
    }
  }
}
"""
# The CLI test's variables (managed_secrets_tests.rs).
CLI_VARIABLES = {
    "input": {
        "audience": AWS,
        "requestedDurationSeconds": 3600,
        "subjectTemplate": ["scoped_principal"],
    }
}
# The worker's hand-written request (oz-agent-worker internal/tasklogs/token.go).
WORKER_MUTATION = """
mutation WorkerLogToken($input: IssueTaskIdentityTokenInput!) {
  issueTaskIdentityToken(requestContext: {osContext: {}, clientContext: {}}, input: $input) {
    __typename
    ... on IssueTaskIdentityTokenOutput { token expiresAt }
  }
}
"""
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
MULTI_TEAM_MESSAGE = (
    "Cannot issue a team-scoped identity token: you belong to multiple teams. "
    "Select a team using the X-Warp-Team-Uid request header."
)


def oz_headers(agent: Agent, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {agent.key}",
        "X-Warp-Cloud-Agent-ID": agent.run_id,
        "X-Warp-Ambient-Workload-Token": agent.workload_token,
        **extra,
    }


def mutate(
    client: TestClient,
    headers: dict[str, str],
    *,
    query: str = CLI_MUTATION,
    variables: dict[str, Any] | None = None,
) -> httpx2.Response:
    body = {
        "query": query,
        "variables": CLI_VARIABLES if variables is None else variables,
        "operationName": "IssueTaskIdentityToken" if query == CLI_MUTATION else None,
    }
    return client.post(URL, json=body, headers=headers)


def result_of(response: httpx2.Response) -> dict[str, Any]:
    """The mutation's result from a 200 JSON answer without GraphQL errors."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"data"}, body
    assert set(body["data"]) == {"issueTaskIdentityToken"}
    result: dict[str, Any] = body["data"]["issueTaskIdentityToken"]
    return result


def verify(client: TestClient, clock: ManualClock, token: str, audience: str) -> dict[str, Any]:
    """Claims of ``token``, checked by PyJWT against the served JWKS at the clock's time."""
    header = jwt.get_unverified_header(token)
    jwks = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    issuer = client.get("/.well-known/openid-configuration").json()["issuer"]
    # NOTE: real_asyncio: the test client's event loop runs in another thread meanwhile.
    with freeze_time(clock.now(), real_asyncio=True):
        claims: dict[str, Any] = jwt.decode(
            token,
            key=jwks[header["kid"]],
            algorithms=[header["alg"]],
            audience=audience,
            issuer=issuer,
            options={"require": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"]},
        )
    return claims


def user_facing_error(response: httpx2.Response) -> dict[str, Any]:
    result = result_of(response)
    assert result["__typename"] == "UserFacingError", result
    assert result["responseContext"] == {"serverVersion": __version__}
    assert "token" not in result
    error: dict[str, Any] = result["error"]
    return error


def audit(world: World) -> list[dict[str, Any]]:
    listed = world.client.get("/api/v1/tokens", headers=world.admin)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


# ---- success ------------------------------------------------------------------------


def test_cli_mutation_issues_a_token_pyjwt_verifies(
    world: World, clock: ManualClock, settings: Settings
) -> None:
    agent = world.agent()
    result = result_of(mutate(world.client, oz_headers(agent)))
    assert set(result) == {"__typename", "token", "expiresAt", "issuer", "responseContext"}
    assert result["__typename"] == "IssueTaskIdentityTokenOutput"
    assert result["responseContext"] == {"serverVersion": __version__}
    assert result["issuer"] == settings.issuer
    claims = verify(world.client, clock, result["token"], AWS)
    assert claims["sub"] == "scoped_principal:t1/user:u1"
    assert claims["aud"] == [AWS]
    assert claims["iss"] == result["issuer"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["run_id"] == agent.run_id
    assert claims["teams"] == ["t1"]
    assert RFC3339_UTC.fullmatch(result["expiresAt"])
    expires = datetime.strptime(result["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert int(expires.timestamp()) == claims["exp"]
    assert claims["iat"] <= clock.now().timestamp() < claims["exp"]


def test_worker_mutation_gets_exactly_what_it_selected(world: World, clock: ManualClock) -> None:
    agent = world.agent()
    variables = {"input": {"audience": "warp-cloud-agent-otel", "requestedDurationSeconds": 10800}}
    response = world.client.post(
        "/graphql/v2",
        json={"query": WORKER_MUTATION, "variables": variables},
        headers=oz_headers(agent),
    )
    result = result_of(response)
    assert set(result) == {"__typename", "token", "expiresAt"}
    claims = verify(world.client, clock, result["token"], "warp-cloud-agent-otel")
    assert claims["sub"] == "user:u1"  # no subjectTemplate: the server's default
    assert claims["exp"] - claims["iat"] == 10800


def test_a_query_selecting_only_token_gets_only_token(world: World, clock: ManualClock) -> None:
    agent = world.agent()
    query = (
        "mutation($input: IssueTaskIdentityTokenInput!) { issueTaskIdentityToken(input: $input,"
        " requestContext: {clientContext: {}, osContext: {}})"
        " { ... on IssueTaskIdentityTokenOutput { token } } }"
    )
    result = result_of(mutate(world.client, oz_headers(agent), query=query))
    assert set(result) == {"token"}
    assert verify(world.client, clock, result["token"], AWS)["sub"] == "scoped_principal:t1/user:u1"


def test_duration_is_capped_and_defaulted(world: World, clock: ManualClock) -> None:
    agent = world.agent()
    for requested, granted in ((86400, 3 * 3600), (None, 3600), (900, 900)):
        wanted: dict[str, Any] = {"audience": AWS}
        if requested is not None:
            wanted["requestedDurationSeconds"] = requested
        result = result_of(mutate(world.client, oz_headers(agent), variables={"input": wanted}))
        claims = verify(world.client, clock, result["token"], AWS)
        assert claims["exp"] - claims["iat"] == granted


def test_an_omitted_duration_is_the_settings_default(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock, admin_key: str
) -> None:
    # `requestedDurationSeconds` is `Int!` as in Oz, with the server's default duration
    # as its default: omitted, it means what it means in REST. (Introspection, off by
    # default, shows the default.)
    settings = make_settings(tmp_path, default_duration="15m", graphql_introspection=True)
    app = create_app(settings, store=store, keyring=keyring, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        world = World(client, admin_key)
        agent = world.agent()
        introspected = client.post(
            URL,
            json={
                "query": '{ __type(name: "IssueTaskIdentityTokenInput") { inputFields {'
                " name defaultValue type { kind ofType { name } } } } }"
            },
            headers=oz_headers(agent),
        ).json()["data"]["__type"]["inputFields"]
        duration = next(f for f in introspected if f["name"] == "requestedDurationSeconds")
        assert duration == {
            "name": "requestedDurationSeconds",
            "defaultValue": "900",
            "type": {"kind": "NON_NULL", "ofType": {"name": "Int"}},
        }
        omitted = {"input": {"audience": AWS}}
        result = result_of(mutate(client, oz_headers(agent), variables=omitted))
        claims = verify(client, clock, result["token"], AWS)
        assert claims["exp"] - claims["iat"] == 900
        rest = world.issue(agent)
        assert rest.status_code == 200, rest.text
        assert verify(client, clock, rest.json()["token"], AWS)["exp"] == claims["exp"]


def test_a_null_duration_is_a_graphql_error(world: World) -> None:
    agent = world.agent()
    variables = {"input": {"audience": AWS, "requestedDurationSeconds": None}}
    response = mutate(world.client, oz_headers(agent), variables=variables)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"errors"}, body
    assert "requestedDurationSeconds" in body["errors"][0]["message"]
    assert "Int!" in body["errors"][0]["message"]
    assert audit(world) == []


def test_the_request_context_is_required_as_in_oz(world: World) -> None:
    agent = world.agent()
    query = (
        "mutation($input: IssueTaskIdentityTokenInput!) { issueTaskIdentityToken(input: $input)"
        " { __typename } }"
    )
    body = mutate(world.client, oz_headers(agent), query=query).json()
    assert set(body) == {"errors"}, body
    assert "requestContext" in body["errors"][0]["message"]
    assert "RequestContext!" in body["errors"][0]["message"]
    assert audit(world) == []


def test_each_token_leaves_an_audit_row(world: World, clock: ManualClock) -> None:
    agent = world.agent()
    trace = "0af7651916cd43dd8448eb211c80319c"
    headers = oz_headers(agent, traceparent=f"00-{trace}-b7ad6b7169203331-01")
    tokens = [result_of(mutate(world.client, headers))["token"] for _ in range(2)]
    key_id = world.client.get("/api/v1/whoami", headers=bearer(agent.key)).json()["key"]["id"]
    rows = audit(world)
    assert len(rows) == 2
    for row, token in zip(rows, reversed(tokens), strict=True):  # newest first
        claims = verify(world.client, clock, token, AWS)
        assert row["jti"] == claims["jti"]
        assert row["kid"] == jwt.get_unverified_header(token)["kid"]
        assert row["run_id"] == agent.run_id
        assert row["principal_uid"] == "u1"
        assert row["team_uid"] == "t1"
        assert row["subject"] == claims["sub"]
        assert row["audience"] == AWS
        assert row["api_key_id"] == key_id
        assert row["trace_id"] == trace
        assert token not in str(row)


# ---- refusals inside a 200 answer ---------------------------------------------------


def test_multi_team_principal_must_pick_a_team(world: World, clock: ManualClock) -> None:
    agent = world.agent(teams=("t1", "t2"))
    error = user_facing_error(mutate(world.client, oz_headers(agent)))
    assert error == {"__typename": "InvalidInputError", "message": MULTI_TEAM_MESSAGE}
    assert audit(world) == []
    picked = result_of(mutate(world.client, oz_headers(agent, **{"X-Warp-Team-Uid": "t2"})))
    claims = verify(world.client, clock, picked["token"], AWS)
    assert claims["sub"] == "scoped_principal:t2/user:u1"
    assert claims["teams"] == ["t2"]


def test_missing_agent_id_header(world: World) -> None:
    agent = world.agent()
    headers = oz_headers(agent)
    del headers["X-Warp-Cloud-Agent-ID"]
    error = user_facing_error(mutate(world.client, headers))
    assert error["__typename"] == "InvalidInputError"
    assert "X-Warp-Cloud-Agent-ID" in error["message"]
    assert audit(world) == []


@pytest.mark.parametrize(
    ("case", "code", "retryable", "detail"),
    [
        ("no workload token", "NOT_AUTHORIZED", False, "X-Warp-Ambient-Workload-Token"),
        ("another run's workload token", "NOT_AUTHORIZED", False, "workload token"),
        ("another principal's run", "NOT_AUTHORIZED", False, "another principal"),
        ("unknown run", "RESOURCE_NOT_FOUND", False, "run no-such-run not found"),
        ("queued run", "CONFLICT", True, "QUEUED"),
        ("finished run", "OPERATION_NOT_SUPPORTED", False, "SUCCEEDED"),
        ("foreign team", "NOT_AUTHORIZED", False, "not a member of team t9"),
    ],
)
def test_platform_errors(world: World, case: str, code: str, retryable: bool, detail: str) -> None:
    agent = world.agent()
    headers = oz_headers(agent)
    if case == "no workload token":
        del headers["X-Warp-Ambient-Workload-Token"]
    elif case == "another run's workload token":
        headers["X-Warp-Ambient-Workload-Token"] = world.run(agent.uid)["workload_token"]
    elif case == "another principal's run":
        other = world.agent("u2")
        headers["X-Warp-Cloud-Agent-ID"] = other.run_id
        headers["X-Warp-Ambient-Workload-Token"] = other.workload_token
    elif case == "unknown run":
        headers["X-Warp-Cloud-Agent-ID"] = "no-such-run"
    elif case == "queued run":
        run = world.run(agent.uid, state="QUEUED")
        headers["X-Warp-Cloud-Agent-ID"] = run["run_id"]
        headers["X-Warp-Ambient-Workload-Token"] = run["workload_token"]
    elif case == "finished run":
        path = f"/api/v1/runs/{agent.run_id}"
        assert world.client.patch(path, json={"state": "SUCCEEDED"}, headers=world.admin).is_success
    else:
        headers["X-Warp-Team-Uid"] = "t9"
    error = user_facing_error(mutate(world.client, headers))
    assert error["__typename"] == "PlatformError"
    assert error["info"] == {"code": code, "retryable": retryable}
    assert detail in error["detail"]
    assert error["message"].endswith(f"({error['detail']})")
    assert audit(world) == []


# ---- transport-level errors ---------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wk-not-a-key", "Bearer " + "wk-" + "C" * 43]
)
def test_bad_api_key_is_a_401_problem(world: World, authorization: str | None) -> None:
    agent = world.agent()
    headers = oz_headers(agent)
    del headers["Authorization"]
    if authorization is not None:
        headers["Authorization"] = authorization
    response = mutate(world.client, headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    problem = response.json()
    assert (
        problem["type"] == "/reference/api-and-sdk/troubleshooting/errors/authentication-required/"
    )
    assert problem["instance"] == "/graphql/v2"
    assert problem["retryable"] is False


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("mutation IssueTaskIdentityToken($input: IssueTaskIdentityTokenInput!) {", "Syntax Error"),
        ('mutation { issueTaskIdentityToken(input: {audience: "a"}) { nonsense } }', "nonsense"),
        ("mutation { issueTaskIdentityToken { __typename } }", "input"),
        ("mutation($input: IssueTaskIdentityTokenInput!) { nope(input: $input) }", "nope"),
    ],
)
def test_graphql_syntax_and_validation_errors(world: World, query: str, message: str) -> None:
    agent = world.agent()
    response = mutate(world.client, oz_headers(agent), query=query)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"errors"}  # no execution: no data member (GraphQL spec §7.1.2)
    assert any(message in error["message"] for error in body["errors"]), body
    assert audit(world) == []


def test_missing_variable_is_a_graphql_error(world: World) -> None:
    agent = world.agent()
    response = mutate(world.client, oz_headers(agent), variables={})
    assert response.status_code == 200
    body = response.json()
    assert body["errors"]
    assert "$input" in body["errors"][0]["message"]
    assert body.get("data") is None
    assert audit(world) == []


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b'{"query": "mutation {', "not valid JSON"),
        (b"[]", "JSON object with a 'query' string"),
        (b'{"variables": {"input": {"audience": "sts.amazonaws.com"}}}', "'query' string"),
        (b'{"query": "{ serverVersion }", "variables": [1]}', "'variables' must be"),
    ],
)
def test_malformed_request_bodies_are_400_problems(
    world: World, content: bytes, detail: str
) -> None:
    agent = world.agent()
    response = world.client.post(URL, content=content, headers=oz_headers(agent))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/reference/api-and-sdk/troubleshooting/errors/invalid-request/"
    assert detail in problem["detail"]
    assert problem["error"] == f"{problem['title']} ({problem['detail']})"


def test_aliases_cannot_mint_several_tokens_in_one_request(world: World) -> None:
    agent = world.agent()
    query = """
    mutation Many($input: IssueTaskIdentityTokenInput!) {
      first: issueTaskIdentityToken(
        input: $input, requestContext: {clientContext: {}, osContext: {}}
      ) {
        __typename ... on IssueTaskIdentityTokenOutput { token }
      }
      second: issueTaskIdentityToken(
        input: $input, requestContext: {clientContext: {}, osContext: {}}
      ) {
        __typename ... on UserFacingError { error { __typename message } }
      }
    }
    """
    response = mutate(world.client, oz_headers(agent), query=query)
    data = response.json()["data"]
    assert data["first"]["__typename"] == "IssueTaskIdentityTokenOutput"
    assert data["second"]["__typename"] == "UserFacingError"
    assert data["second"]["error"]["message"] == "one issueTaskIdentityToken per request"
    assert len(audit(world)) == 1


def test_an_oversized_query_is_refused_before_parsing(world: World) -> None:
    agent = world.agent()
    padded = CLI_MUTATION + "#" * 9000 + "\n"
    response = mutate(world.client, oz_headers(agent), query=padded)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "longer than" in response.json()["detail"]
    assert audit(world) == []
