"""The broker endpoints: a run gets cloud credentials without handling a JWT."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from federation.stand_ins.aws_sts import AwsSts, OidcProvider, Role, aws_sts_app
from federation.stand_ins.gcp_sts import GcpStandIn, Provider, gcp_sts_app
from federation.stand_ins.issuers import IssuerKeys
from federation.stand_ins.serving import serve
from tests.exchange.gcp_helpers import POOL, PROVIDER
from tests.support import Agent, LiveServer, World, free_port, serve_issuer

ROLE = "arn:aws:iam::123456789012:role/deploy"
SERVICE_ACCOUNT = "deployer@project.iam.gserviceaccount.com"


@dataclass
class Clouds:
    issuer: LiveServer
    sts: AwsSts
    gcp: GcpStandIn


@pytest.fixture(scope="module")
def clouds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clouds]:
    port = free_port()
    issuer_url = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=5.0) as http:
        sts_app = aws_sts_app(
            [OidcProvider(issuer_url)],
            [Role(ROLE, sub="scoped_principal:platform/*", tag_session=True)],
            keys=IssuerKeys(http),
        )
        gcp_app = gcp_sts_app(
            [Provider(name=PROVIDER, issuer_uri=issuer_url)],
            {SERVICE_ACCOUNT: [f"principalSet://{POOL}/*"]},
            keys=IssuerKeys(http),
        )
        with serve(sts_app) as sts_url, serve(gcp_app) as gcp_url:
            settings = {
                "aws_sts_endpoint_url": sts_url,
                "gcp_sts_url": f"{gcp_url}/v1/token",
                "gcp_iam_url": gcp_url,
            }
            with serve_issuer(tmp_path_factory.mktemp("broker"), port=port, **settings) as issuer:
                yield Clouds(issuer, sts_app.state.sts, gcp_app.state.gcp)


def post(clouds: Clouds, agent: Agent, path: str, body: dict[str, Any]) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {agent.key}",
        "X-Warp-Ambient-Workload-Token": agent.workload_token,
    }
    return httpx.post(
        f"{clouds.issuer.url}/api/v1/federate{path}",
        json={"run_id": agent.run_id, **body},
        headers=headers,
        timeout=20,
    )


def audited(clouds: Clouds, agent: Agent) -> list[dict[str, Any]]:
    answer = World.live(clouds.issuer).request("GET", f"/api/v1/tokens?run_id={agent.run_id}")
    return list(answer.json()["items"])


def test_aws_credentials_for_a_run(clouds: Clouds) -> None:
    agent = World.live(clouds.issuer).platform_agent(environment="prod")
    answer = post(
        clouds, agent, "/aws/credentials", {"role_arn": ROLE, "aws_session_tags": ["environment"]}
    )
    assert answer.status_code == 200, answer.text
    credentials = answer.json()
    assert credentials["access_key_id"]
    assert credentials["secret_access_key"]
    assert credentials["session_token"]
    granted = clouds.sts.sessions[-1]
    assert granted.role_arn == ROLE
    assert granted.session_name == f"Oz_Run_{agent.run_id}"
    assert granted.subject == f"scoped_principal:platform/user:{agent.uid}"
    assert granted.tags == {"environment": "prod"}
    [row] = audited(clouds, agent)
    assert row["audience"] == "sts.amazonaws.com"
    assert "token" not in credentials  # the JWT never leaves the issuer


def test_an_upstream_refusal_is_a_problem_naming_what_sts_said(clouds: Clouds) -> None:
    agent = World.live(clouds.issuer).platform_agent()
    other_role = "arn:aws:iam::123456789012:role/unknown"
    answer = post(clouds, agent, "/aws/credentials", {"role_arn": other_role})
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["upstream"] == {"service": "aws-sts", "code": "AccessDenied"}
    assert "trust policy" in problem["detail"]
    assert "eyJ" not in answer.text


def test_a_finished_run_gets_nothing_and_sts_is_not_asked(clouds: Clouds) -> None:
    admin = World.live(clouds.issuer)
    agent = admin.platform_agent()
    admin.set_state(agent.run_id, "SUCCEEDED")
    before = len(clouds.sts.sessions)
    answer = post(clouds, agent, "/aws/credentials", {"role_arn": ROLE})
    assert answer.status_code == 422
    assert "upstream" not in answer.json()
    assert len(clouds.sts.sessions) == before
    assert audited(clouds, agent) == []


def test_gcp_access_token_with_impersonation(clouds: Clouds) -> None:
    agent = World.live(clouds.issuer).platform_agent()
    answer = post(
        clouds,
        agent,
        "/gcp/access-token",
        {"audience": PROVIDER, "service_account": SERVICE_ACCOUNT, "subject_template": ["teams"]},
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["token_type"] == "Bearer"
    assert token["access_token"]
    seen = clouds.gcp.exchanges[-1]
    assert seen.claims["sub"] == "teams:platform"
    assert seen.claims["aud"] == [PROVIDER]


def test_gcp_refusal_names_the_upstream(clouds: Clouds) -> None:
    agent = World.live(clouds.issuer).platform_agent()
    wrong = PROVIDER.replace("providers/federation", "providers/elsewhere")
    answer = post(clouds, agent, "/gcp/access-token", {"audience": wrong})
    assert answer.status_code in {400, 403}
    assert answer.json()["upstream"]["service"] == "gcp-sts"
