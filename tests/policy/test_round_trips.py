"""Round trips: tokens our server issues with each subject template, tested against the
policy `federation policy suggest` wrote for that run. The suggestion admits the run's
token and refuses a token of another run whose every attribute differs. And
`issue-token --check-*`, which refuses before signing what a given policy would reject.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from federation.cli import cli
from tests.cli.helpers import agent_env, issue_over_http, unique
from tests.support import Agent, LiveServer, LiveWorld, World, start_server

ISSUER = "https://issuer.example.com/oz"  # a path: AWS's provider ARN includes it
PROVIDER_ARN = "arn:aws:iam::111122223333:oidc-provider/issuer.example.com/oz"
GCP_PROVIDER = (
    "projects/123456789012/locations/global/workloadIdentityPools/agents/providers/oz-agents"
)
GCP_AUDIENCE = f"//iam.googleapis.com/{GCP_PROVIDER}"
TEMPLATES = [
    ["principal"],
    ["scoped_principal"],
    ["email"],
    ["teams"],
    ["teams", "environment"],
    ["environment", "agent_name"],
    ["skill_spec"],
    ["host", "run_id"],
    ["scoped_principal", "environment", "agent_name"],
]


class Run:
    """An agent and everything its run's tokens carry, as `--run-attributes`."""

    def __init__(self, admin: LiveWorld, team: str, environment: str, agent_name: str) -> None:
        uid = unique("dev")
        admin.principal(uid, teams=(team,), email=f"{uid}@example.com")
        key = admin.api_key(uid)
        attributes = {
            "team_uid": team,
            "environment": environment,
            "agent_name": agent_name,
            "skill_spec": f"acme/{agent_name}:run",
            "host": f"{environment}-host",
        }
        created = admin.run(uid, **attributes)
        self.agent = Agent(uid, key, created["run_id"], created["workload_token"])
        self.attributes = [
            f"principal=user:{uid}",
            f"email={uid}@example.com",
            f"teams={team}",
            f"environment={environment}",
            f"agent_name={agent_name}",
            f"skill_spec=acme/{agent_name}:run",
            f"host={environment}-host",
            f"run_id={created['run_id']}",
        ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home: Path = tmp_path_factory.mktemp("issuer")
    settings = {"FEDERATION_ISSUER": ISSUER}
    yield from start_server(home, f"sqlite:///{home}/var/federation.db", settings)


@pytest.fixture(scope="module")
def runs(server: LiveServer) -> tuple[Run, Run]:
    admin = World.live(server)
    return Run(admin, "t1", "prod", "deployer"), Run(admin, "t10", "staging", "reviewer")


def federation(*args: str) -> tuple[int, str]:
    """The CLI in-process (the subprocess tests cover the entry point)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def token(server: LiveServer, run: Run, template: list[str], audience: str) -> str:
    body = {"subject_template": template, "audience": audience}
    return str(issue_over_http(server, run.agent, **body)["token"])


@pytest.mark.parametrize("template", TEMPLATES, ids=["+".join(t) for t in TEMPLATES])
def test_aws_suggestion_admits_its_run_only(
    server: LiveServer, runs: tuple[Run, Run], template: list[str], tmp_path: Path
) -> None:
    mine, other = runs
    status, output = federation(
        "policy", "suggest", "aws", "--provider-arn", PROVIDER_ARN,
        "--subject-template", *template, "--run-attributes", *mine.attributes,
    )  # fmt: skip
    assert status == 0, output
    policy = tmp_path / "trust.json"
    policy.write_text(output, encoding="utf-8")
    test = ["policy", "test", "aws", "--trust-policy", str(policy), "--provider-arn", PROVIDER_ARN]
    allowed = federation(*test, "--token", token(server, mine, template, "sts.amazonaws.com"))
    assert allowed[0] == 0, allowed[1]
    denied = federation(*test, "--token", token(server, other, template, "sts.amazonaws.com"))
    assert denied[0] == 1, denied[1]
    assert denied[1].startswith("DENY: ")


@pytest.mark.parametrize("template", TEMPLATES, ids=["+".join(t) for t in TEMPLATES])
def test_gcp_suggestion_admits_its_run_only(
    server: LiveServer, runs: tuple[Run, Run], template: list[str], tmp_path: Path
) -> None:
    mine, other = runs
    status, output = federation(
        "policy", "suggest", "gcp", "--provider-name", GCP_PROVIDER, "--issuer", ISSUER,
        "--subject-template", *template, "--run-attributes", *mine.attributes,
    )  # fmt: skip
    assert status == 0, output
    suggestion = json.loads(output)
    provider = tmp_path / "provider.json"
    provider.write_text(json.dumps(suggestion["provider"]), encoding="utf-8")
    test = ["policy", "test", "gcp", "--provider", str(provider), "--member", suggestion["member"]]
    assert suggestion["audience"] == GCP_AUDIENCE
    allowed = federation(*test, "--token", token(server, mine, template, GCP_AUDIENCE))
    assert allowed[0] == 0, allowed[1]
    denied = federation(*test, "--token", token(server, other, template, GCP_AUDIENCE))
    assert denied[0] == 1, denied[1]


# ---- issue-token --check-* ------------------------------------------------------------


def audited(server: LiveServer, run_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/api/v1/tokens",
        params={"run_id": run_id},
        headers={"Authorization": f"Bearer {server.admin_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def trust_policy(path: Path, subject: str) -> str:
    path.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": PROVIDER_ARN},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {"issuer.example.com/oz:aud": "sts.amazonaws.com"},
                            "StringLike": {"issuer.example.com/oz:sub": subject},
                        },
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    return str(path)


def test_check_aws_trust_policy_issues_what_the_policy_admits(
    server: LiveServer, runs: tuple[Run, Run], tmp_path: Path
) -> None:
    mine = runs[0]
    policy = trust_policy(tmp_path / "trust.json", "teams:t1/environment:*")
    result = server.cli(
        "issue-token", "--run-id", mine.agent.run_id, "--audience", "sts.amazonaws.com",
        "--subject-template", "teams", "environment", "--check-aws-trust-policy", policy,
        "--check-aws-provider-arn", PROVIDER_ARN, env=agent_env(mine.agent),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    issued = result.stdout.strip()
    assert issued.count(".") == 2
    assert [row["jti"] for row in audited(server, mine.agent.run_id)] != []


def test_check_aws_trust_policy_refuses_before_signing(
    server: LiveServer, runs: tuple[Run, Run], tmp_path: Path
) -> None:
    other = runs[1]
    before = audited(server, other.agent.run_id)
    # `teams:t1*` would also admit team t10: the policy says t1/ on purpose.
    policy = trust_policy(tmp_path / "trust.json", "teams:t1/*")
    result = server.cli(
        "issue-token", "--run-id", other.agent.run_id, "--audience", "sts.amazonaws.com",
        "--subject-template", "teams", "environment", "--check-aws-trust-policy", policy,
        env=agent_env(other.agent),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("DENY: ")
    assert "'teams:t10/environment:staging'" in result.stderr  # the value compared
    assert lines[-1].startswith(
        "federation: The policy you gave would refuse this token, so none was issued. "
        "(the AWS trust policy: "
    )
    assert other.agent.key not in result.stderr
    assert other.agent.workload_token not in result.stderr
    assert audited(server, other.agent.run_id) == before


def test_check_gcp_provider_refuses_a_subject_the_condition_rejects(
    server: LiveServer, runs: tuple[Run, Run], tmp_path: Path
) -> None:
    other = runs[1]
    provider = tmp_path / "provider.json"
    provider.write_text(
        json.dumps(
            {
                "name": GCP_PROVIDER,
                "state": "ACTIVE",
                "oidc": {"issuerUri": ISSUER},
                "attributeMapping": {"google.subject": "assertion.sub"},
                "attributeCondition": "assertion.sub.startsWith('teams:t1/')",
            }
        ),
        encoding="utf-8",
    )
    result = server.cli(
        "issue-token", "--run-id", other.agent.run_id, "--audience", GCP_AUDIENCE,
        "--subject-template", "teams", "environment", "--check-gcp-provider", str(provider),
        env=agent_env(other.agent),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "attribute condition" in result.stderr.splitlines()[-1]


def test_check_azure_credential_passes_an_exact_match(
    server: LiveServer, runs: tuple[Run, Run], tmp_path: Path
) -> None:
    mine = runs[0]
    credential = tmp_path / "credential.json"
    credential.write_text(
        json.dumps(
            {
                "issuer": ISSUER,
                "subject": "teams:t1/environment:prod",
                "audiences": ["api://AzureADTokenExchange"],
            }
        ),
        encoding="utf-8",
    )
    result = server.cli(
        "issue-token", "--run-id", mine.agent.run_id, "--audience", "api://AzureADTokenExchange",
        "--subject-template", "teams", "environment", "--check-azure-credential",
        str(credential), "--output-format", "json", env=agent_env(mine.agent),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["issuer"] == ISSUER


def test_check_options_are_checked_before_the_issuer_is_asked(
    server: LiveServer, runs: tuple[Run, Run], tmp_path: Path
) -> None:
    mine = runs[0]
    base = ["issue-token", "--run-id", mine.agent.run_id, "--audience", "sts.amazonaws.com"]
    missing = server.cli(*base, "--check-aws-trust-policy", "nope.json", env=agent_env(mine.agent))
    assert missing.returncode == 2
    assert "cannot read the trust policy file" in missing.stderr
    lonely = server.cli(*base, "--check-gcp-member", "principal://x", env=agent_env(mine.agent))
    assert lonely.returncode == 2
    assert "--check-gcp-member goes with --check-gcp-provider" in lonely.stderr
