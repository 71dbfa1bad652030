"""`federation issue-token` and `issue-gcp-token` as the Oz CLI's `oz federate
issue-token` and `issue-gcp-token`: its duration grammar, its refusal of an empty
subject template, its three output shapes, and google-auth's environment variables.

In process (the entry point's `main`), against the real application served from a
thread; every token is verified with PyJWT against the live discovery and JWKS.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from federation.cli import main
from tests.cli.helpers import agent_env, assert_error_line, invoke_main, verify_with_pyjwt
from tests.support import Agent, LiveServer, LiveWorld

AWS = "sts.amazonaws.com"
PROVIDER = (
    "//iam.googleapis.com/projects/123456789012/locations/global/"
    "workloadIdentityPools/oz-runs/providers/federation"
)
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
AIP_4117_SUCCESS = {"version", "success", "token_type", "id_token", "expiration_time"}
# RFC 3339 in UTC as the Oz client writes it (chrono's to_rfc3339): "+00:00", not "Z".
RFC_3339_UTC = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?\+00:00"
)
EMPTY_TEMPLATE = "--subject-template requires at least one value"


@pytest.fixture
def agent(admin: LiveWorld) -> Agent:
    return admin.platform_agent()


def run_env(server: LiveServer, agent: Agent, **variables: str) -> dict[str, str]:
    """A run's environment: the issuer, the agent's key, its workload token, its run."""
    return {
        "FEDERATION_URL": server.url,
        "OZ_RUN_ID": agent.run_id,
        **agent_env(agent),
        **variables,
    }


def issue(server: LiveServer, agent: Agent, *args: str) -> subprocess.CompletedProcess[str]:
    """`federation issue-token --audience sts.amazonaws.com ARGS` inside the run."""
    return invoke_main("issue-token", "--audience", AWS, *args, env=run_env(server, agent))


def issue_gcp(
    server: LiveServer, agent: Agent, *args: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """`federation issue-gcp-token ARGS` as google-auth runs it, with ``variables``."""
    return invoke_main("issue-gcp-token", *args, env=run_env(server, agent, **variables))


def lifetime(token: str, server: LiveServer, audience: str = AWS) -> int:
    claims = verify_with_pyjwt(token, server.url, audience)
    return int(claims["exp"]) - int(claims["iat"])


def audited(admin: LiveWorld, run_id: str) -> list[dict[str, Any]]:
    response = admin.request("GET", "/api/v1/tokens", params={"run_id": run_id})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


# ---- --duration: the Oz CLI's grammar (Rust humantime) ---------------------------------


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("2h 37min", 2 * 3600 + 37 * 60),  # humantime's own example
        ("1h 30m", 5400),
        ("2h30m", 9000),
        ("30min", 1800),
        ("1hour", 3600),
        ("90s", 90),
        ("15min 2s 999ms", 15 * 60 + 2),  # sub-second parts are cut to whole seconds
        (" 1 h  5 mins ", 3900),
    ],
)
def test_duration_takes_the_oz_grammar(
    server: LiveServer, agent: Agent, duration: str, seconds: int
) -> None:
    result = issue(server, agent, "--duration", duration)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert lifetime(result.stdout.strip(), server) == seconds


@pytest.mark.parametrize("duration", ["1y 2M 3w", "1month", "2 days", "1w", "68y"])
def test_months_and_years_are_capped_like_any_long_duration(
    server: LiveServer, agent: Agent, duration: str
) -> None:
    result = issue(server, agent, "--duration", duration)

    assert result.returncode == 0, result.stderr
    notice = result.stderr.splitlines()
    assert len(notice) == 1
    assert notice[0].endswith("granted 3h (the issuer's maximum)")
    assert lifetime(result.stdout.strip(), server) == 3 * 3600


@pytest.mark.parametrize(
    "duration", ["1.5h", "90", "1x", "-1h", "1h-30m", "10 months 1", "PT1H", "1H", "", "soon"]
)
def test_a_duration_outside_the_grammar_is_a_usage_error(
    server: LiveServer, agent: Agent, admin: LiveWorld, duration: str
) -> None:
    result = issue(server, agent, "--duration", duration)

    message = assert_error_line(result, 2, agent.key, agent.workload_token)
    assert "duration is not valid: use numbers with units" in message
    assert audited(admin, agent.run_id) == []  # refused before any request


def test_a_duration_beyond_an_i32_of_seconds_is_refused(
    server: LiveServer, agent: Agent, admin: LiveWorld
) -> None:
    # The Oz client sends requestedDurationSeconds as an i32 and refuses what is larger.
    result = issue(server, agent, "--duration", "69y")

    message = assert_error_line(result, 2, agent.key, agent.workload_token)
    assert "out of bounds" in message
    assert str(2**31 - 1) in message
    assert audited(admin, agent.run_id) == []


def test_a_sub_second_duration_is_below_the_minimum(server: LiveServer, agent: Agent) -> None:
    result = issue(server, agent, "--duration", "500ms")

    message = assert_error_line(result, 2, agent.key, agent.workload_token)
    assert "below the minimum of 1m" in message


# ---- --subject-template -------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--subject-template",),
        ("--subject-template", "--output-format", "json"),
        ("--subject-template", ""),
        ("--subject-template=",),
        ("--subject-template", "", ""),
    ],
    ids=["at-end", "before-a-flag", "empty-value", "equals-empty", "empty-values"],
)
def test_an_empty_subject_template_is_refused_with_the_oz_message(
    server: LiveServer, agent: Agent, admin: LiveWorld, args: tuple[str, ...]
) -> None:
    result = issue(server, agent, *args)

    message = assert_error_line(result, 2, agent.key, agent.workload_token)
    assert message.startswith(EMPTY_TEMPLATE)  # then, maybe, where to find --help
    assert audited(admin, agent.run_id) == []


# ---- --output-format: the Oz CLI's three shapes --------------------------------------


def test_text_is_the_token_alone(server: LiveServer, agent: Agent) -> None:
    result = issue(server, agent, "--output-format", "text")

    assert result.returncode == 0, result.stderr
    token = result.stdout.removesuffix("\n")
    assert result.stdout == f"{token}\n"
    assert "\n" not in token
    assert lifetime(token, server) == 3600


@pytest.mark.parametrize("output", ["json", "ndjson"])
def test_json_is_one_line_of_token_expires_at_and_issuer(
    server: LiveServer, agent: Agent, output: str
) -> None:
    result = issue(server, agent, "--output-format", output)

    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("}\n")
    assert result.stdout.count("\n") == 1
    document = json.loads(result.stdout)
    assert list(document) == ["token", "expires_at", "issuer"]
    assert document["issuer"] == server.url
    claims = verify_with_pyjwt(document["token"], server.url, AWS)
    assert RFC_3339_UTC.fullmatch(document["expires_at"])
    expires_at = datetime.fromisoformat(document["expires_at"])
    assert expires_at.utcoffset() == timedelta(0)
    assert int(expires_at.timestamp()) == claims["exp"]


def test_pretty_is_three_labelled_lines(server: LiveServer, agent: Agent) -> None:
    result = issue(server, agent, "--duration", "15m", "--output-format", "pretty")

    assert result.returncode == 0, result.stderr
    token, expires_at, issuer = result.stdout.splitlines()
    assert token.startswith("Token: ")
    assert expires_at.startswith("Expires at: ")
    assert issuer == f"Issuer: {server.url}"
    claims = verify_with_pyjwt(token.removeprefix("Token: "), server.url, AWS)
    assert claims["exp"] - claims["iat"] == 15 * 60
    moment = expires_at.removeprefix("Expires at: ")
    assert RFC_3339_UTC.fullmatch(moment)
    assert int(datetime.fromisoformat(moment).timestamp()) == claims["exp"]


# ---- issue-gcp-token: google-auth's executable ---------------------------------------


def test_issue_gcp_token_takes_google_auths_variables(
    server: LiveServer, agent: Agent, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.json"
    result = issue_gcp(
        server,
        agent,
        GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=PROVIDER,
        GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE=JWT,
        GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE=str(cache),
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    response = json.loads(result.stdout)
    assert set(response) == AIP_4117_SUCCESS
    assert (response["version"], response["success"], response["token_type"]) == (1, True, JWT)
    claims = verify_with_pyjwt(response["id_token"], server.url, PROVIDER)
    assert claims["sub"] == f"user:{agent.uid}"
    assert claims["exp"] == response["expiration_time"]
    assert claims["exp"] - claims["iat"] == 3600
    assert json.loads(cache.read_text()) == response
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_issue_gcp_token_flags_win_over_the_variables(server: LiveServer, agent: Agent) -> None:
    other = PROVIDER.replace("/providers/federation", "/providers/other")
    result = issue_gcp(
        server,
        agent,
        *("--audience", PROVIDER, "--token-type", ID_TOKEN, "--duration", "1 hour 30 min"),
        GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=other,
        GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE=JWT,
    )

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["token_type"] == ID_TOKEN
    assert lifetime(response["id_token"], server, PROVIDER) == 5400


def test_issue_gcp_token_failure_is_a_json_error_on_stderr(
    server: LiveServer, agent: Agent
) -> None:
    result = issue_gcp(
        server, agent, "--duration", "1.5h", GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=PROVIDER
    )

    assert result.returncode == 1
    assert result.stdout == ""
    error = json.loads(result.stderr)
    assert error["version"] == 1
    assert error["success"] is False
    assert error["code"] == "TOKEN_ISSUANCE_FAILED"
    assert "duration is not valid" in error["message"]
    assert agent.key not in result.stderr


def test_an_unwritable_output_file_is_reported_and_the_token_still_printed(
    server: LiveServer, agent: Agent, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-directory" / "cache.json"
    result = issue_gcp(
        server,
        agent,
        GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=PROVIDER,
        GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE=str(missing),
    )

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["success"] is True
    verify_with_pyjwt(response["id_token"], server.url, PROVIDER)
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("federation: warning: cannot write the output file")
    assert str(missing) in warning
    assert agent.key not in warning
    assert not missing.exists()


def test_with_stderr_sent_into_stdout_the_response_stays_parseable(
    server: LiveServer, agent: Agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # google-auth for Python runs the executable with stderr=STDOUT and parses the
    # whole of it as JSON: a warning there would fail a credential that works.
    variables = run_env(
        server,
        agent,
        GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=PROVIDER,
        GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE=str(tmp_path / "no-such-directory" / "cache.json"),
    )
    merged = tmp_path / "merged-output"
    with monkeypatch.context() as patch, merged.open("w", encoding="utf-8") as stream:
        patch.delenv("GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE", raising=False)
        for name, value in variables.items():
            patch.setenv(name, value)
        patch.setattr(sys, "stdout", stream)
        patch.setattr(sys, "stderr", stream)
        main(["issue-gcp-token"])  # returns: exit status 0

    response = json.loads(merged.read_text(encoding="utf-8"))
    assert response["success"] is True
    assert response["token_type"] == ID_TOKEN
