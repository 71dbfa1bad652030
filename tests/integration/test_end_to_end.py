"""End to end against the real server process, on SQLite and on PostgreSQL.

Tokens are issued through the HTTP API, the Oz GraphQL mutation and the CLI, and every
one is verified the way a cloud does it, independently of our code: PyJWT's
``PyJWKClient`` pointed at the ``jwks_uri`` of the live discovery document.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support import Agent, LiveServer, bearer, start_server

AWS = "sts.amazonaws.com"
ENTRA = "api://AzureADTokenExchange"
GRAPHQL = """
mutation IssueTaskIdentityToken($input: IssueTaskIdentityTokenInput!) {
  issueTaskIdentityToken(requestContext: {osContext: {}, clientContext: {}}, input: $input) {
    __typename
    ... on IssueTaskIdentityTokenOutput {
      token expiresAt issuer responseContext { serverVersion }
    }
    ... on UserFacingError { error { __typename message } }
  }
}
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path}/server/var/federation.db"
    else:
        database_url = str(request.getfixturevalue("postgres_url"))
    yield from start_server(tmp_path / "server", database_url)


def create(server: LiveServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}{path}", json=body, headers=bearer(server.admin_key), timeout=10
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def make_agent(server: LiveServer) -> Agent:
    """User ``ada`` in team ``platform`` with a federate key and an INPROGRESS run."""
    create(
        server,
        "/api/v1/principals",
        {"type": "user", "uid": "ada", "email": "ada@example.com", "teams": ["platform"]},
    )
    key = create(
        server, "/api/v1/api-keys", {"name": "agent", "type": "personal", "principal_uid": "ada"}
    )["key"]
    run = create(
        server,
        "/api/v1/runs",
        {
            "principal_uid": "ada",
            "team_uid": "platform",
            "environment": "staging",
            "agent_name": "nightly-deploy",
            "skill_spec": "acme/infra:deploy",
            "host": "warp",
            "state": "INPROGRESS",
        },
    )
    return Agent(uid="ada", key=key, run_id=run["run_id"], workload_token=run["workload_token"])


class CloudVerifier:
    """What AWS STS or Entra does with a token: discovery, JWKS by kid, then the claims."""

    def __init__(self, issuer_url: str) -> None:
        discovery = httpx.get(f"{issuer_url}/.well-known/openid-configuration", timeout=10)
        assert discovery.status_code == 200, discovery.text
        self.discovery = discovery.json()
        self.issuer = self.discovery["issuer"]
        self.jwks = jwt.PyJWKClient(self.discovery["jwks_uri"], cache_keys=False, timeout=10)

    def verify(
        self, token: str, *, audience: str, alg: str, sub: str, lifetime: int
    ) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        assert (header["typ"], header["alg"]) == ("JWT", alg)
        key = self.jwks.get_signing_key_from_jwt(token)
        assert key.key_id == header["kid"]
        assert key.algorithm_name == alg
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=audience,
            issuer=self.issuer,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]},
        )
        assert claims["iss"] == self.issuer
        assert claims["aud"] == [audience]
        assert claims["sub"] == sub
        assert claims["exp"] - claims["iat"] == lifetime
        assert claims["exp"] > time.time()
        return claims


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def over_http(server: LiveServer, agent: Agent, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/federate/issue-token",
        json={"run_id": agent.run_id, **body},
        headers=agent.headers(),
        timeout=10,
    )


def over_graphql(server: LiveServer, agent: Agent, **variables: Any) -> dict[str, Any]:
    """The request the Oz CLI and worker send (docs/reference/graphql.md)."""
    response = httpx.post(
        f"{server.url}/graphql/v2",
        params={"op": "IssueTaskIdentityToken"},
        json={"query": GRAPHQL, "variables": {"input": variables}},
        headers={
            **bearer(agent.key),
            "X-Warp-Cloud-Agent-ID": agent.run_id,
            "X-Warp-Ambient-Workload-Token": agent.workload_token,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"]["issueTaskIdentityToken"])


def test_every_channel_issues_tokens_a_cloud_accepts(server: LiveServer) -> None:
    cloud = CloudVerifier(server.url)
    assert cloud.issuer == server.url
    assert cloud.discovery["jwks_uri"].startswith(f"{server.url}/")
    assert {"ES256", "RS256"} <= set(cloud.discovery["id_token_signing_alg_values_supported"])
    agent = make_agent(server)
    jtis: set[str] = set()

    # HTTP, ES256 for AWS with a two-component subject.
    answer = over_http(
        server, agent, audience=AWS, duration="15m", subject_template=["teams", "environment"]
    )
    assert answer.status_code == 200, answer.text
    issued = answer.json()
    claims = cloud.verify(
        issued["token"],
        audience=AWS,
        alg="ES256",
        sub="teams:platform/environment:staging",
        lifetime=900,
    )
    assert (issued["jti"], issued["subject"]) == (claims["jti"], claims["sub"])
    assert issued["kid"] == jwt.get_unverified_header(issued["token"])["kid"]
    assert (claims["run_id"], claims["skill_spec"]) == (agent.run_id, "acme/infra:deploy")
    assert (claims["email"], claims["teams"]) == ("ada@example.com", ["platform"])
    jtis.add(claims["jti"])

    # HTTP, RS256 for Entra.
    answer = over_http(server, agent, audience=ENTRA, requested_duration_seconds=600)
    assert answer.status_code == 200, answer.text
    claims = cloud.verify(
        answer.json()["token"], audience=ENTRA, alg="RS256", sub="user:ada", lifetime=600
    )
    jtis.add(claims["jti"])

    # GraphQL, as the Oz CLI sends it, for both algorithms.
    output = over_graphql(
        server,
        agent,
        audience=AWS,
        requestedDurationSeconds=1800,
        subjectTemplate=["scoped_principal"],
    )
    assert output["__typename"] == "IssueTaskIdentityTokenOutput", output
    assert output["issuer"] == server.url
    claims = cloud.verify(
        output["token"],
        audience=AWS,
        alg="ES256",
        sub="scoped_principal:platform/user:ada",
        lifetime=1800,
    )
    assert epoch(output["expiresAt"]) == claims["exp"]
    jtis.add(claims["jti"])
    output = over_graphql(server, agent, audience=ENTRA)
    assert output["__typename"] == "IssueTaskIdentityTokenOutput", output
    claims = cloud.verify(
        output["token"], audience=ENTRA, alg="RS256", sub="user:ada", lifetime=3600
    )
    jtis.add(claims["jti"])

    # The CLI, as an agent inside the run calls it.
    env = {"WARP_API_KEY": agent.key, "WARP_WORKLOAD_TOKEN": agent.workload_token}
    env["OZ_RUN_ID"] = agent.run_id
    result = server.cli(
        "issue-token", "--audience", AWS, "--duration", "20m",
        "--subject-template", "agent_name", "host", "--output-format", "json", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    claims = cloud.verify(
        document["token"],
        audience=AWS,
        alg="ES256",
        sub="agent_name:nightly-deploy/host:warp",
        lifetime=1200,
    )
    assert document["issuer"] == server.url
    assert epoch(document["expires_at"]) == claims["exp"]
    jtis.add(claims["jti"])
    result = server.cli("issue-token", "--audience", ENTRA, env=env)
    assert result.returncode == 0, result.stderr
    claims = cloud.verify(
        result.stdout.strip(), audience=ENTRA, alg="RS256", sub="user:ada", lifetime=3600
    )
    jtis.add(claims["jti"])

    # Six distinct tokens, six audit rows in the store.
    assert len(jtis) == 6
    audit = httpx.get(
        f"{server.url}/api/v1/tokens",
        params={"run_id": agent.run_id},
        headers=bearer(server.admin_key),
        timeout=10,
    )
    assert audit.status_code == 200, audit.text
    assert {row["jti"] for row in audit.json()["items"]} == jtis

    # A verifier that accepts anything proves nothing: this one refuses a wrong audience.
    key = cloud.jwks.get_signing_key_from_jwt(document["token"])
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(document["token"], key.key, algorithms=["ES256"], audience=ENTRA)


def test_a_finished_run_gets_no_token_on_any_channel(server: LiveServer) -> None:
    agent = make_agent(server)
    moved = httpx.patch(
        f"{server.url}/api/v1/runs/{agent.run_id}",
        json={"state": "SUCCEEDED"},
        headers=bearer(server.admin_key),
        timeout=10,
    )
    assert moved.status_code == 200, moved.text

    answer = over_http(server, agent, audience=AWS)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    output = over_graphql(server, agent, audience=AWS, requestedDurationSeconds=3600)
    assert output["__typename"] == "UserFacingError"
    assert output["error"]["message"]
    assert agent.workload_token not in json.dumps(output) + answer.text
