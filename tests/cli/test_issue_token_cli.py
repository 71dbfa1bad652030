"""`federation issue-token` (the entry point's ``main``, in process) against the real
application served on loopback: the flags and environment of `oz federate issue-token`,
its output formats, and its errors.

Every token is verified with PyJWT against the server's live discovery and JWKS.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.cli.helpers import (
    agent_env,
    assert_error_line,
    invoke_cli,
    unique,
    verify_with_pyjwt,
)
from tests.support import Agent, LiveServer, LiveWorld, bearer, free_port

AWS = "sts.amazonaws.com"


@pytest.fixture
def agent(admin: LiveWorld) -> Agent:
    return admin.platform_agent(agent_name="nightly-deploy", skill_spec="acme/infra:deploy")


def issue(
    server: LiveServer, agent: Agent, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`federation issue-token --run-id <run> --audience sts.amazonaws.com ARGS`."""
    return invoke_cli(
        server,
        "issue-token",
        "--run-id",
        agent.run_id,
        "--audience",
        AWS,
        *args,
        env=agent_env(agent) if env is None else env,
    )


def lifetime(claims: dict[str, Any]) -> int:
    return int(claims["exp"]) - int(claims["iat"])


def timestamp(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def audited_tokens(admin: LiveWorld, run_id: str) -> list[dict[str, Any]]:
    response = admin.request("GET", "/api/v1/tokens", params={"run_id": run_id})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def http_problem(
    server: LiveServer, key: str, workload_token: str | None, body: dict[str, Any]
) -> dict[str, Any]:
    """The problem the HTTP API answers for the same request the CLI sends."""
    headers = bearer(key)
    if workload_token is not None:
        headers["X-Warp-Ambient-Workload-Token"] = workload_token
    response = httpx.post(
        f"{server.url}/api/v1/federate/issue-token", json=body, headers=headers, timeout=10
    )
    assert response.status_code >= 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return dict(response.json())


# ---- success: the three output formats ------------------------------------------------


def test_text_output_is_the_raw_token_only(server: LiveServer, agent: Agent) -> None:
    result = issue(server, agent)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    token = result.stdout.removesuffix("\n")
    assert result.stdout == f"{token}\n"
    assert token.count(".") == 2
    assert " " not in token
    claims = verify_with_pyjwt(token, server.url, AWS)
    assert claims["iss"] == server.url
    assert claims["aud"] == [AWS]
    assert claims["sub"] == f"user:{agent.uid}"  # the default template: principal
    assert claims["run_id"] == agent.run_id
    assert lifetime(claims) == 3600  # the default duration, 1h


def test_json_output_takes_the_run_from_oz_run_id(server: LiveServer, agent: Agent) -> None:
    env = {**agent_env(agent), "OZ_RUN_ID": agent.run_id}
    result = invoke_cli(
        server,
        "issue-token",
        "--audience",
        AWS,
        "--duration",
        "15m",
        "--output-format",
        "json",
        env=env,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1  # one line, as the Oz CLI prints it
    document = json.loads(result.stdout)
    assert list(document) == ["token", "expires_at", "issuer"]
    assert document["issuer"] == server.url
    claims = verify_with_pyjwt(document["token"], server.url, AWS)
    assert claims["run_id"] == agent.run_id
    assert lifetime(claims) == 15 * 60
    assert timestamp(document["expires_at"]) == claims["exp"]


def test_pretty_output_with_a_multi_component_subject(server: LiveServer, agent: Agent) -> None:
    # Several values after one flag, and the flag after them still counts.
    result = issue(
        server,
        agent,
        "--duration",
        "2h30m",
        "--subject-template",
        "teams",
        "environment",
        "--output-format",
        "pretty",
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == ["Token", "Expires at", "Issuer"]
    token, expires_at, issuer = (line.split(": ", 1)[1] for line in lines)
    assert issuer == server.url
    claims = verify_with_pyjwt(token, server.url, AWS)
    assert claims["sub"] == "teams:platform/environment:staging"
    assert lifetime(claims) == 2 * 3600 + 30 * 60
    assert timestamp(expires_at) == claims["exp"]


def test_api_key_flag_and_a_capped_duration(server: LiveServer, agent: Agent) -> None:
    env = {"WARP_WORKLOAD_TOKEN": agent.workload_token}  # no WARP_API_KEY
    flags = ("--api-key", agent.key, "--duration", "5h", "--output-format", "json")
    result = issue(server, agent, *flags, env=env)

    assert result.returncode == 0, result.stderr
    notice = result.stderr.strip()
    assert len(notice.splitlines()) == 1
    assert "5h" in notice
    assert "3h" in notice
    assert agent.key not in result.stderr + result.stdout
    document = json.loads(result.stdout)
    claims = verify_with_pyjwt(document["token"], server.url, AWS)
    assert lifetime(claims) == 3 * 3600
    assert timestamp(document["expires_at"]) == claims["exp"]


def test_every_issued_token_is_audited(server: LiveServer, agent: Agent, admin: LiveWorld) -> None:
    result = issue(server, agent, "--subject-template", "run_id")

    assert result.returncode == 0, result.stderr
    claims = verify_with_pyjwt(result.stdout.strip(), server.url, AWS)
    assert claims["sub"] == f"run_id:{agent.run_id}"
    rows = audited_tokens(admin, agent.run_id)
    assert [row["jti"] for row in rows] == [claims["jti"]]
    assert rows[0]["subject"] == claims["sub"]


# ---- usage errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [("--subject-template",), ("--subject-template", "--duration", "1h")],
    ids=["at-end", "before-another-flag"],
)
def test_subject_template_without_a_value_is_refused(
    server: LiveServer, agent: Agent, admin: LiveWorld, tail: tuple[str, ...]
) -> None:
    result = issue(server, agent, *tail)

    assert result.returncode == 2
    assert "--subject-template requires at least one value" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert audited_tokens(admin, agent.run_id) == []  # nothing was sent


def test_unparsable_duration_is_refused_before_any_request(
    server: LiveServer, agent: Agent, admin: LiveWorld
) -> None:
    result = issue(server, agent, "--duration", "1x")

    message = assert_error_line(result, 2, agent.key, agent.workload_token)
    assert "duration is not valid" in message
    assert audited_tokens(admin, agent.run_id) == []


def test_no_api_key_is_a_usage_error(server: LiveServer, agent: Agent) -> None:
    result = issue(server, agent, env={"WARP_WORKLOAD_TOKEN": agent.workload_token})

    message = assert_error_line(result, 2, agent.workload_token)
    assert "WARP_API_KEY" in message


def test_unreachable_server_is_retryable(server: LiveServer, agent: Agent) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = issue(server, agent, env={**agent_env(agent), "FEDERATION_URL": closed})

    message = assert_error_line(result, 75, agent.key, agent.workload_token)
    assert closed in message


# ---- errors the server answers: the CLI prints the problem's "title (detail)" ---------


def test_bad_api_key(server: LiveServer, agent: Agent) -> None:
    bad_key = f"wk-{secrets.token_urlsafe(32)}"
    env = {"WARP_API_KEY": bad_key, "WARP_WORKLOAD_TOKEN": agent.workload_token}
    result = issue(server, agent, env=env)

    message = assert_error_line(result, 77, bad_key, agent.workload_token)
    body = {"run_id": agent.run_id, "audience": AWS, "duration": "1h"}
    problem = http_problem(server, bad_key, agent.workload_token, body)
    assert problem["status"] == 401
    assert message == problem["error"]


def test_unknown_run(server: LiveServer, agent: Agent) -> None:
    missing = unique("no-such-run")
    result = invoke_cli(
        server, "issue-token", "--run-id", missing, "--audience", AWS, env=agent_env(agent)
    )

    message = assert_error_line(result, 1, agent.key, agent.workload_token)
    body = {"run_id": missing, "audience": AWS, "duration": "1h"}
    problem = http_problem(server, agent.key, agent.workload_token, body)
    assert problem["status"] == 404
    assert message == problem["error"]
    assert missing in message


def test_missing_workload_token(server: LiveServer, agent: Agent, admin: LiveWorld) -> None:
    result = issue(server, agent, env={"WARP_API_KEY": agent.key})

    message = assert_error_line(result, 77, agent.key, agent.workload_token)
    body = {"run_id": agent.run_id, "audience": AWS, "duration": "1h"}
    problem = http_problem(server, agent.key, None, body)
    assert problem["status"] == 403
    # The issuer's title; the detail in the CLI's words: the variable, not the header.
    assert message.startswith(f"{problem['title']} (")
    assert "set WARP_WORKLOAD_TOKEN" in message
    assert "X-Warp-Ambient-Workload-Token" in problem["error"]
    assert audited_tokens(admin, agent.run_id) == []


def test_finished_run(server: LiveServer, agent: Agent, admin: LiveWorld) -> None:
    admin.set_state(agent.run_id, "SUCCEEDED")
    result = issue(server, agent)

    message = assert_error_line(result, 1, agent.key, agent.workload_token)
    body = {"run_id": agent.run_id, "audience": AWS, "duration": "1h"}
    problem = http_problem(server, agent.key, agent.workload_token, body)
    assert problem["status"] == 422
    assert problem["retryable"] is False
    assert message == problem["error"]
    assert audited_tokens(admin, agent.run_id) == []


def test_queued_run_is_retryable(server: LiveServer, admin: LiveWorld) -> None:
    queued = admin.platform_agent(state="QUEUED")
    result = issue(server, queued)

    message = assert_error_line(result, 75, queued.key, queued.workload_token)
    body = {"run_id": queued.run_id, "audience": AWS, "duration": "1h"}
    problem = http_problem(server, queued.key, queued.workload_token, body)
    assert problem["status"] == 409
    assert problem["retryable"] is True
    assert message == problem["error"]


def test_duration_below_the_minimum(server: LiveServer, agent: Agent, admin: LiveWorld) -> None:
    result = issue(server, agent, "--duration", "30s")

    message = assert_error_line(result, 2, agent.key, agent.workload_token)
    body = {"run_id": agent.run_id, "audience": AWS, "duration": "30s"}
    problem = http_problem(server, agent.key, agent.workload_token, body)
    assert problem["status"] == 400
    assert message == problem["error"]
    assert audited_tokens(admin, agent.run_id) == []
