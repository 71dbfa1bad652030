"""The executable path: `gcp-credential-config` writes the external_account file,
google-auth's own `google.auth.default()` loads it and refreshes by running the real
`federation issue-gcp-token` (a process, as google-auth starts it, within the file's
timeout) against the GCP stand-in, with and without impersonation. The commands the
tests run themselves are the entry point's ``main``, in process."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google.auth
import jwt
import pytest
import requests
from google.auth import exceptions, pluggable
from google.auth.transport.requests import Request

from tests.cli.helpers import assert_error_line, verify_with_pyjwt
from tests.exchange.gcp_helpers import (
    CLOUD_PLATFORM,
    PROVIDER,
    SERVICE_ACCOUNT,
    Run,
    checked_exchange,
    new_run,
    principal,
    provider,
    running_gcp,
)
from tests.support import LiveServer, World, serve_issuer

ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
AIP_4117_SUCCESS = {"version", "success", "token_type", "id_token", "expiration_time"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("gcp-executable")) as server:
        yield server


@pytest.fixture
def run(server: LiveServer) -> Run:
    return new_run(server)


def write_config(run: Run, out: Path, *args: str) -> dict[str, str]:
    """`federation gcp-credential-config`; returns the variables it says to export."""
    result = run.cli("gcp-credential-config", "--audience", PROVIDER, "--out", str(out), *args)
    assert result.returncode == 0, result.stderr
    exported = {}
    for line in result.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        exported[name] = value
    return exported


def default_credentials(monkeypatch: pytest.MonkeyPatch, run: Run, exported: dict[str, str]) -> Any:
    """What a program in the run gets from google.auth.default(), unchanged."""
    for name, value in {**run.env(), **exported}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "acme-prod")  # no project-number lookup
    credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM])
    assert project == "acme-prod"
    assert isinstance(credentials, pluggable.Credentials)
    return credentials


def refresh(credentials: Any) -> None:
    with requests.Session() as session:
        credentials.refresh(Request(session))


def test_google_auth_default_refreshes_through_the_executable(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gcp.json"
    with running_gcp([provider(run.server)]) as gcp:
        exported = write_config(run, path, "--token-url", gcp.token_url)
        assert exported == {
            "GOOGLE_APPLICATION_CREDENTIALS": str(path),
            "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES": "1",
        }
        credentials = default_credentials(monkeypatch, run, exported)
        refresh(credentials)
        assert credentials.token.startswith("ya29.stand-in-sts.")
        assert credentials.valid
        claims = checked_exchange(gcp, run, PROVIDER)
        assert claims["aud"] == [PROVIDER]
        assert claims["exp"] - claims["iat"] == 3600
        assert not gcp.gcp.impersonations

        refresh(credentials)  # every refresh runs the executable: a fresh token
        assert len(gcp.gcp.exchanges) == 2
        assert gcp.gcp.exchanges[0].claims["jti"] != gcp.gcp.exchanges[1].claims["jti"]


def test_google_auth_default_with_impersonation(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindings = {SERVICE_ACCOUNT: [principal(run.subject)]}
    with running_gcp([provider(run.server)], bindings) as gcp:
        exported = write_config(
            run,
            tmp_path / "gcp.json",
            *("--service-account", SERVICE_ACCOUNT, "--duration", "15m"),
            *("--token-url", gcp.token_url, "--impersonation-url-base", gcp.url),
        )
        credentials = default_credentials(monkeypatch, run, exported)
        assert credentials.service_account_email == SERVICE_ACCOUNT
        refresh(credentials)
        assert credentials.token.startswith("ya29.stand-in-sa.")
        claims = checked_exchange(gcp, run, PROVIDER)
        assert claims["exp"] - claims["iat"] == 900
        (seen,) = gcp.gcp.impersonations
        assert seen.service_account == SERVICE_ACCOUNT
        assert seen.principal == principal(run.subject)
        assert seen.scopes == (CLOUD_PLATFORM,)


def test_the_configuration_file(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "gcp.json"
    write_config(run, path, "--service-account", SERVICE_ACCOUNT, "--duration", "15m")
    config = json.loads(path.read_text())
    command = config["credential_source"]["executable"].pop("command")
    assert config == {
        "type": "external_account",
        "audience": PROVIDER,
        "subject_token_type": ID_TOKEN,
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": (
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
            f"{SERVICE_ACCOUNT}:generateAccessToken"
        ),
        "credential_source": {"executable": {"timeout_millis": 30000}},
    }
    assert Path(command.split()[0]).is_absolute()
    assert command.endswith(
        f"--url {run.server.url} issue-gcp-token --run-id {run.agent.run_id} --duration 900s"
    )
    text = path.read_text()
    assert run.agent.key not in text
    assert run.agent.workload_token not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # nothing secret in it


def test_an_audience_with_the_project_id_is_refused(run: Run, tmp_path: Path) -> None:
    audience = PROVIDER.replace("/projects/123456789012/", "/projects/acme-prod/")
    result = run.cli("gcp-credential-config", "--audience", audience, "--out", str(tmp_path / "x"))
    message = assert_error_line(result, 2, run.agent.key)
    assert "project number" in message
    assert not (tmp_path / "x").exists()


def test_issue_gcp_token_prints_the_aip_4117_response(run: Run, tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    result = run.cli(
        "issue-gcp-token",
        GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=PROVIDER,
        GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE=JWT,
        GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE=str(cache),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # google-auth reads stderr with stdout
    response = json.loads(result.stdout)
    assert set(response) == AIP_4117_SUCCESS
    assert response["version"] == 1
    assert response["success"] is True
    assert response["token_type"] == JWT
    claims = verify_with_pyjwt(response["id_token"], run.server.url, PROVIDER)
    assert claims["sub"] == run.subject  # always the principal template
    assert claims["exp"] == response["expiration_time"]
    assert claims["exp"] - claims["iat"] == 3600  # Oz's default --duration 1h
    assert json.loads(cache.read_text()) == response
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_issue_gcp_token_flags(run: Run) -> None:
    result = run.cli("issue-gcp-token", "--audience", PROVIDER, "--duration", "10m")
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["token_type"] == ID_TOKEN
    claims = jwt.decode(response["id_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600


def aip_4117_error(returncode: int, stdout: str, stderr: str, *secrets: str) -> str:
    assert returncode == 1
    assert stdout == ""
    assert "Traceback" not in stderr
    for secret in secrets:
        assert secret not in stderr
    response = json.loads(stderr)
    assert set(response) == {"version", "success", "code", "message"}
    assert response["version"] == 1
    assert response["success"] is False
    assert response["code"] == "TOKEN_ISSUANCE_FAILED"
    return str(response["message"])


def test_issue_gcp_token_failure_is_an_aip_4117_error(run: Run) -> None:
    result = run.cli(
        "issue-gcp-token",
        WARP_API_KEY="wk-not-a-real-key",
        GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=PROVIDER,
    )
    message = aip_4117_error(result.returncode, result.stdout, result.stderr, "wk-not-a-real-key")
    assert "API key" in message


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--token-type", "urn:ietf:params:oauth:token-type:saml2"], {}, "token type"),
        ([], {"GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE": ""}, "audience"),
        ([], {"WARP_API_KEY": ""}, "WARP_API_KEY"),
        ([], {"OZ_RUN_ID": ""}, "run id"),
        (["--duration", "forever"], {}, "duration"),
    ],
)
def test_issue_gcp_token_refusals(
    run: Run, args: list[str], env: dict[str, str], expected: str
) -> None:
    result = run.cli(
        "issue-gcp-token", *args, **{"GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE": PROVIDER, **env}
    )
    message = aip_4117_error(result.returncode, result.stdout, result.stderr, run.agent.key)
    assert expected in message


def test_google_auth_reports_a_finished_run(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_gcp([provider(run.server)]) as gcp:
        exported = write_config(run, tmp_path / "gcp.json", "--token-url", gcp.token_url)
        credentials = default_credentials(monkeypatch, run, exported)
        World.live(run.server).set_state(run.agent.run_id, "SUCCEEDED")
        with pytest.raises(exceptions.RefreshError) as caught:
            refresh(credentials)
        assert "TOKEN_ISSUANCE_FAILED" in str(caught.value)
        assert not gcp.gcp.exchanges
