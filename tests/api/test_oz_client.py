"""The Oz client's ``IssueTaskIdentityToken`` operation against ``/graphql/v2``.

The served schema keeps every promise of ``oz_schema.graphql`` (Oz's names, types and
nullability), and the operation, sent as the Oz client builds it (its text, variables,
headers and ``?op=``), answers what the client parses: a token PyJWT verifies, or a
``UserFacingError`` in a 200 answer. Driven in process and against a real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    find_breaking_changes,
    parse,
    validate,
)

from federation import __version__
from federation.api import create_app
from federation.api.routes.graphql import SCHEMA
from federation.api.routes.graphql_schema import SDL
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.rate_limits import InProcessBuckets, Limits
from federation.store import Store
from tests.conftest import make_settings
from tests.support import Agent, LiveServer, World, bearer

PROMISED = build_schema((Path(__file__).parent / "oz_schema.graphql").read_text())

# The operation as the Oz client's generated code spells it.
WITH_FRAGMENTS = """
mutation IssueTaskIdentityToken($input: IssueTaskIdentityTokenInput!, $requestContext: RequestContext!) {
  issueTaskIdentityToken(input: $input, requestContext: $requestContext) {
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
        ... on SharedObjectsLimitExceeded { limit objectType message }
        ... on PersonalObjectsLimitExceeded { limit objectType message }
        ... on AccountDelinquencyError { message }
        ... on GenericStringObjectUniqueKeyConflict { message }
        ... on BudgetExceededError { message }
        ... on PaymentMethodDeclinedError { message }
        ... on InvalidAttachmentError { message }
        message
      }
      responseContext { serverVersion }
    }
  }
}
"""  # noqa: E501
# The same operation with the error's fallback spelled directly.
DIRECT = """
mutation IssueTaskIdentityToken($input: IssueTaskIdentityTokenInput!, $requestContext: RequestContext!) {
  issueTaskIdentityToken(input: $input, requestContext: $requestContext) {
    __typename
    ... on IssueTaskIdentityTokenOutput { token expiresAt issuer responseContext { serverVersion } }
    ... on UserFacingError { error { __typename message } responseContext { serverVersion } }
  }
}
"""  # noqa: E501
OPERATIONS = {"with fragments": WITH_FRAGMENTS, "direct": DIRECT}
OPERATION = "IssueTaskIdentityToken"
PATH = f"/graphql/v2?op={OPERATION}"
AWS = "sts.amazonaws.com"
CLIENT_VERSION = "v0.2026.12.03.08.00.stable_00"
OsContext = dict[str, str | None]
LINUX: OsContext = {
    "category": "Linux",
    "linuxKernelVersion": "6.8.0-49-generic",
    "name": "Ubuntu",
    "version": "24.04",
}
MACOS: OsContext = {
    "category": "macOS",
    "linuxKernelVersion": None,
    "name": "macOS",
    "version": "15.1",
}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
MULTI_TEAM_MESSAGE = (
    "Cannot issue a team-scoped identity token: you belong to multiple teams. "
    "Select a team using the X-Warp-Team-Uid request header."
)


# ---- the client's side ----------------------------------------------------------------


def client_headers(agent: Agent, os: OsContext = LINUX) -> dict[str, str]:
    """The headers the Oz client sends with the operation."""
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {agent.key}",
        "X-Warp-Cloud-Agent-ID": agent.run_id,
        "X-Warp-Ambient-Workload-Token": agent.workload_token,
        "X-Warp-Client-Version": CLIENT_VERSION,
        "X-Warp-OS-Category": os["category"],
        "X-Warp-OS-Name": os["name"],
        "X-Warp-OS-Version": os["version"],
        "X-Warp-Client-ID": "3f2a6c1e-8d4b-4f7a-9c2e-5b1d0a7e6f48",
        "X-Warp-Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "X-Warp-OS-Linux-Kernel-Version": os["linuxKernelVersion"],
    }
    return {name: value for name, value in headers.items() if value is not None}


def client_body(
    query: str,
    *,
    os: OsContext = LINUX,
    duration: int = 3600,
    subject_template: list[str] | None = None,
) -> dict[str, Any]:
    """The JSON body, with variables as the client fills them (duration in whole seconds,
    ``["principal"]`` unless ``--subject-template`` says otherwise)."""
    return {
        "query": query,
        "variables": {
            "input": {
                "audience": AWS,
                "requestedDurationSeconds": duration,
                "subjectTemplate": subject_template or ["principal"],
            },
            "requestContext": {"clientContext": {"version": CLIENT_VERSION}, "osContext": os},
        },
        "operationName": OPERATION,
    }


@dataclass(frozen=True)
class Issued:
    token: str
    expires_at: datetime
    issuer: str
    server_version: str | None


@dataclass(frozen=True)
class Refused:
    typename: str
    message: str
    server_version: str | None


def parsed(status: int, body: dict[str, Any]) -> Issued | Refused:
    """The answer as the Oz client reads it: only a 200 is a GraphQL answer; the result
    is one of the union's two members; an error type it does not know is
    ``{__typename, message}``."""
    assert status == 200, body
    assert set(body) == {"data"}, body
    result = body["data"]["issueTaskIdentityToken"]
    server_version = result["responseContext"]["serverVersion"]
    if result["__typename"] == "IssueTaskIdentityTokenOutput":
        assert set(result) == {"__typename", "token", "expiresAt", "issuer", "responseContext"}
        assert RFC3339.fullmatch(result["expiresAt"]), result["expiresAt"]
        expires_at = datetime.fromisoformat(result["expiresAt"])
        assert expires_at.utcoffset() == timedelta(0)
        return Issued(result["token"], expires_at.astimezone(UTC), result["issuer"], server_version)
    assert result["__typename"] == "UserFacingError", result
    assert set(result) == {"__typename", "error", "responseContext"}
    error = result["error"]
    assert set(error) == {"__typename", "message"}, error  # none of the client's own types
    assert isinstance(error["message"], str)
    assert error["message"]
    return Refused(error["__typename"], error["message"], server_version)


def verified(token: str, jwks: dict[str, Any], issuer: str, audience: str = AWS) -> dict[str, Any]:
    """The claims, checked by PyJWT against the served JWKS (at the current time)."""
    header = jwt.get_unverified_header(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        key=jwt.PyJWKSet.from_dict(jwks)[header["kid"]],
        algorithms=[header["alg"]],
        audience=audience,
        issuer=issuer,
        options={"require": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"]},
    )
    return claims


def audited(world: World) -> int:
    listed = world.client.get("/api/v1/tokens", headers=world.admin)
    assert listed.status_code == 200, listed.text
    return len(listed.json()["items"])


# ---- the schema keeps Oz's names, types and nullability -------------------------------


def differences(promised: GraphQLSchema, served: GraphQLSchema) -> list[str]:
    """Every promise of ``promised`` that ``served`` breaks: root names, types and their
    kinds, fields, arguments and input fields with the very same type (nullability
    included, either way), interfaces, union members, enum values."""
    found: list[str] = []
    for root in ("query_type", "mutation_type"):
        want, got = getattr(promised, root), getattr(served, root)
        if (want and want.name) != (got and got.name):
            found.append(f"{root} is {got and got.name}, not {want and want.name}")
    for name, want in promised.type_map.items():
        if name.startswith("__"):  # introspection's own types
            continue
        got = served.type_map.get(name)
        if got is None or type(got) is not type(want):
            found.append(f"{name}: missing, or not a {type(want).__name__}")
            continue
        if isinstance(want, GraphQLObjectType | GraphQLInterfaceType):
            assert isinstance(got, GraphQLObjectType | GraphQLInterfaceType)
            missing = {i.name for i in want.interfaces} - {i.name for i in got.interfaces}
            found.extend(f"{name} does not implement {i}" for i in sorted(missing))
        if isinstance(want, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            assert isinstance(
                got, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType
            )
            for field_name, field in want.fields.items():
                other = got.fields.get(field_name)
                if other is None or str(other.type) != str(field.type):
                    found.append(f"{name}.{field_name}: {other and other.type}, not {field.type}")
                    continue
                for arg_name, arg in getattr(field, "args", {}).items():
                    served_arg = getattr(other, "args", {}).get(arg_name)
                    if served_arg is None or str(served_arg.type) != str(arg.type):
                        found.append(f"{name}.{field_name}({arg_name}:) is not {arg.type}")
        if isinstance(want, GraphQLUnionType):
            assert isinstance(got, GraphQLUnionType)
            missing = {t.name for t in want.types} - {t.name for t in got.types}
            found.extend(f"{name} lacks member {member}" for member in sorted(missing))
        if isinstance(want, GraphQLEnumType):
            assert isinstance(got, GraphQLEnumType)
            found.extend(
                f"{name} lacks {value}" for value in sorted(set(want.values) - set(got.values))
            )
    return found


def test_the_served_schema_keeps_every_promise() -> None:
    assert differences(PROMISED, SCHEMA) == []
    # Also what graphql-core counts as breaking: e.g. an argument or input field of ours
    # that the client's operation would have to send.
    assert [change.description for change in find_breaking_changes(PROMISED, SCHEMA)] == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("OSContext", "OsContext"),
        ("RootMutation", "Mutation"),
        ("requestedDurationSeconds: Int!", "requestedDurationSeconds: Int"),
        ("clientContext: ClientContext!", "clientContext: ClientContext"),
        ("input: IssueTaskIdentityTokenInput!", "input: IssueTaskIdentityTokenInput"),
        ("requestContext: RequestContext!", "requestContext: RequestContext"),
        (
            "type ResponseContext {\n  serverVersion: String\n",
            "type ResponseContext {\n  serverVersion: String!\n",
        ),
        ("expiresAt: Time!", "expiresAt: String!"),
        ("limit: Int!", "limit: Int"),
        ("repositories: [GitHubRepo!]!", "repositories: [GitHubRepo]!"),
        ("type TOSViolationError implements UserFacingErrorInterface", "type TOSViolationError"),
        ("| UserFacingError", "| PlatformError"),
        ("  Notebook\n", ""),
    ],
)
def test_the_check_sees_each_kind_of_drift(old: str, new: str) -> None:
    assert old in SDL
    drifted = build_schema(SDL.replace(old, new))
    assert differences(PROMISED, drifted) != []


@pytest.mark.parametrize("query", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_the_client_operation_validates(query: str) -> None:
    assert validate(SCHEMA, parse(query)) == []


# ---- in process -----------------------------------------------------------------------


def post(world: World, headers: dict[str, str], body: dict[str, Any]) -> Issued | Refused:
    response = world.client.post(PATH, json=body, headers=headers)
    assert response.headers["content-type"].startswith("application/json")
    return parsed(response.status_code, response.json())


@pytest.mark.parametrize("os", [LINUX, MACOS], ids=["linux", "macos"])
@pytest.mark.parametrize("query", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_the_client_operation_issues_a_token(
    world: World, clock: ManualClock, query: str, os: OsContext
) -> None:
    agent = world.agent()
    answer = post(world, client_headers(agent, os), client_body(query, os=os, duration=1800))
    assert isinstance(answer, Issued), answer
    discovery = world.client.get("/.well-known/openid-configuration").json()
    assert answer.issuer == discovery["issuer"]
    assert answer.server_version == __version__
    jwks = world.client.get("/.well-known/jwks.json").json()
    # NOTE: real_asyncio: the test client's event loop runs in another thread meanwhile.
    with freeze_time(clock.now(), real_asyncio=True):
        claims = verified(answer.token, jwks, answer.issuer)
    assert claims["sub"] == "user:u1"
    assert claims["run_id"] == agent.run_id
    assert claims["exp"] - claims["iat"] == 1800
    assert answer.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    assert audited(world) == 1


Setup = Callable[[World, Agent, dict[str, str], dict[str, Any]], None]


def _input(**values: Any) -> Setup:
    def setup(world: World, agent: Agent, headers: dict[str, str], body: dict[str, Any]) -> None:
        body["variables"]["input"].update(values)

    return setup


def _header(name: str, value: str | None) -> Setup:
    def setup(world: World, agent: Agent, headers: dict[str, str], body: dict[str, Any]) -> None:
        headers.pop(name)
        if value is not None:
            headers[name] = value

    return setup


def _run_in(state: str) -> Setup:
    def setup(world: World, agent: Agent, headers: dict[str, str], body: dict[str, Any]) -> None:
        path = f"/api/v1/runs/{agent.run_id}"
        moved = world.client.patch(path, json={"state": state}, headers=world.admin)
        assert moved.status_code == 200, moved.text

    return setup


def _second_team(world: World, agent: Agent, headers: dict[str, str], body: dict[str, Any]) -> None:
    """The request of another agent, whose principal is in two teams."""
    other = world.agent("u2", teams=("t1", "t2"))
    headers.update(client_headers(other))
    body["variables"]["input"]["subjectTemplate"] = ["scoped_principal"]


# refusal: (setup, __typename, what the message says)
REFUSALS: dict[str, tuple[Setup, str, str]] = {
    "unknown subject component": (
        _input(subjectTemplate=["nope"]),
        "InvalidInputError",
        "unknown subject template component",
    ),
    "duration below the minimum": (
        _input(requestedDurationSeconds=5),
        "InvalidInputError",
        "minimum",
    ),
    "negative duration": (_input(requestedDurationSeconds=-1), "InvalidInputError", "duration"),
    "no run id header": (
        _header("X-Warp-Cloud-Agent-ID", None),
        "InvalidInputError",
        "send the run id in the X-Warp-Cloud-Agent-ID header",
    ),
    "several teams, none picked": (_second_team, "InvalidInputError", MULTI_TEAM_MESSAGE),
    "unknown run": (_header("X-Warp-Cloud-Agent-ID", "no-such-run"), "PlatformError", "not found"),
    "no workload token": (
        _header("X-Warp-Ambient-Workload-Token", None),
        "PlatformError",
        "X-Warp-Ambient-Workload-Token",
    ),
    "wrong workload token": (
        _header("X-Warp-Ambient-Workload-Token", "wlt-" + "B" * 43),
        "PlatformError",
        "workload token",
    ),
    "queued run": (_run_in("QUEUED"), "PlatformError", "QUEUED"),
    "finished run": (_run_in("SUCCEEDED"), "PlatformError", "SUCCEEDED"),
}


@pytest.mark.parametrize("query", OPERATIONS.values(), ids=OPERATIONS.keys())
@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_refusal_reaches_the_client_as_a_user_facing_error(
    world: World, case: str, query: str
) -> None:
    setup, typename, says = REFUSALS[case]
    agent = world.agent()
    headers, body = client_headers(agent), client_body(query)
    setup(world, agent, headers, body)
    answer = post(world, headers, body)
    assert isinstance(answer, Refused), answer
    assert answer.typename == typename
    assert says in answer.message
    assert answer.server_version == __version__
    assert audited(world) == 0


def test_a_platform_error_says_what_the_rest_problem_says(world: World) -> None:
    agent = world.agent()
    headers = client_headers(agent)
    headers["X-Warp-Ambient-Workload-Token"] = "wlt-" + "B" * 43
    answer = post(world, headers, client_body(DIRECT))
    rest = world.client.post(
        "/api/v1/federate/issue-token",
        json={"run_id": agent.run_id, "audience": AWS},
        headers=headers,
    )
    assert rest.status_code == 403
    assert answer == Refused("PlatformError", rest.json()["error"], __version__)


@contextmanager
def limited_world(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock, admin_key: str
) -> Iterator[World]:
    """An application whose API keys may issue one token a minute."""
    settings = make_settings(tmp_path, rate_limit_key="1/m,burst=1", rate_limit_run="off")
    buckets = InProcessBuckets(now=lambda: clock.now().timestamp())
    limits = Limits.from_settings(settings, buckets=buckets)
    app = create_app(settings, store=store, keyring=keyring, clock=clock, limits=limits)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client, admin_key)


def test_a_rate_limited_request_is_a_retryable_platform_error(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock, admin_key: str
) -> None:
    with limited_world(tmp_path, store, keyring, clock, admin_key) as world:
        agent = world.agent()
        assert isinstance(post(world, client_headers(agent), client_body(DIRECT)), Issued)
        answer = post(world, client_headers(agent), client_body(WITH_FRAGMENTS))
        assert isinstance(answer, Refused), answer
        assert answer.typename == "PlatformError"
        assert "too many token requests with this API key" in answer.message
        # What the client does not select, our own fields say: the code, retryable.
        detail = world.client.post(
            PATH,
            json={
                **client_body(DIRECT),
                "query": DIRECT.replace(
                    "error { __typename message }",
                    "error { __typename message ... on PlatformError { info { code retryable } } }",
                ),
            },
            headers=client_headers(agent),
        )
        error = detail.json()["data"]["issueTaskIdentityToken"]["error"]
        assert error["info"] == {"code": "RESOURCE_UNAVAILABLE", "retryable": True}


def test_a_bad_api_key_is_not_a_graphql_answer(world: World) -> None:
    agent = world.agent()
    headers = {**client_headers(agent), **bearer("wk-" + "A" * 43)}
    response = world.client.post(PATH, json=client_body(WITH_FRAGMENTS), headers=headers)
    # The client parses only a 200 as GraphQL, and shows any other body as it is.
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert audited(world) == 0


# ---- against a real server process ----------------------------------------------------


def live_answer(
    server: LiveServer, headers: dict[str, str], body: dict[str, Any]
) -> Issued | Refused:
    response = httpx.post(
        f"{server.url}/graphql/v2",
        params={"op": OPERATION},
        json=body,
        headers=headers,
        timeout=10,
    )
    return parsed(response.status_code, response.json())


def test_end_to_end_against_a_running_server(live_server: LiveServer) -> None:
    server = live_server
    agent = World.live(server).agent()
    discovery = httpx.get(f"{server.url}/.well-known/openid-configuration", timeout=10).json()
    jwks = httpx.get(discovery["jwks_uri"], timeout=10).json()
    jtis = set()
    for query, template, subject in (
        (WITH_FRAGMENTS, ["principal"], "user:u1"),
        (DIRECT, ["scoped_principal"], "scoped_principal:t1/user:u1"),
    ):
        body = client_body(query, duration=900, subject_template=template)
        answer = live_answer(server, client_headers(agent), body)
        assert isinstance(answer, Issued), answer
        assert answer.issuer == discovery["issuer"] == server.url
        assert answer.server_version == __version__
        claims = verified(answer.token, jwks, answer.issuer)
        assert claims["sub"] == subject
        assert claims["aud"] == [AWS]
        assert claims["run_id"] == agent.run_id
        assert claims["exp"] - claims["iat"] == 900
        assert answer.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
        jtis.add(claims["jti"])
    assert len(jtis) == 2

    # Refusals, as the client reads them.
    body = client_body(WITH_FRAGMENTS, subject_template=["nope"])
    refused = live_answer(server, client_headers(agent), body)
    assert isinstance(refused, Refused)
    assert refused.typename == "InvalidInputError"
    assert "unknown subject template component" in refused.message
    headers = {**client_headers(agent), "X-Warp-Ambient-Workload-Token": "wlt-" + "B" * 43}
    refused = live_answer(server, headers, client_body(DIRECT))
    assert isinstance(refused, Refused)
    assert refused.typename == "PlatformError"
    assert "workload token" in refused.message
    finished = httpx.patch(
        f"{server.url}/api/v1/runs/{agent.run_id}",
        json={"state": "SUCCEEDED"},
        headers=bearer(server.admin_key),
        timeout=10,
    )
    assert finished.status_code == 200, finished.text
    refused = live_answer(server, client_headers(agent), client_body(DIRECT))
    assert isinstance(refused, Refused)
    assert refused.typename == "PlatformError"
    assert "SUCCEEDED" in refused.message

    tokens = httpx.get(
        f"{server.url}/api/v1/tokens", headers=bearer(server.admin_key), timeout=10
    ).json()["items"]
    assert {row["jti"] for row in tokens} == jtis
