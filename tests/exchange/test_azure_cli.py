"""`federation exchange azure` and `federation azure-assertion`, the entry point's
``main`` in process in a run's environment, against the real application served on
loopback and the Entra stand-in."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from federation.clock import ManualClock
from federation.domain.tokens import ENTRA_AUDIENCE
from federation.errors import EXIT_NOPERM, EXIT_TEMPFAIL, EXIT_USAGE
from tests.cli.helpers import assert_error_line, invoke_cli, verify_with_pyjwt
from tests.exchange.azure_helpers import (
    CLIENT,
    TENANT,
    Run,
    checked_assertion,
    new_run,
    running_entra,
)
from tests.support import LiveServer, World, free_port, serve_issuer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("issuer")) as server:
        yield server


@pytest.fixture
def run(server: LiveServer) -> Run:
    return new_run(server)


def exchange_azure(
    run: Run, authority: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    ids = ("--tenant-id", TENANT, "--client-id", CLIENT) if env is None else ()
    return invoke_cli(
        run.server,
        "exchange",
        "azure",
        *ids,
        "--authority",
        authority,
        *args,
        env={**run.env(), **(env or {})},
    )


def secrets_of(run: Run) -> tuple[str, str]:
    return run.agent.key, run.agent.workload_token


# ---- exchange azure -------------------------------------------------------------------


def test_env_output_is_the_access_token(run: Run) -> None:
    with running_entra(run.credential()) as entra:
        result = exchange_azure(run, entra.url)
        (grant,) = entra.entra.grants
        checked_assertion(entra.entra, run)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"AZURE_ACCESS_TOKEN={grant.access_token}"
    expires_on = int(lines[1].removeprefix("AZURE_ACCESS_TOKEN_EXPIRES_ON="))
    assert abs(expires_on - (datetime.now(UTC).timestamp() + 3599)) < 120
    assert len(lines) == 2
    assert grant.scope == "https://management.azure.com/.default"


def test_json_output_with_ids_from_the_environment(run: Run) -> None:
    credential = run.credential(subject="teams:platform/environment:staging")
    azure_env = {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT}
    with running_entra(credential) as entra:
        result = exchange_azure(
            run,
            entra.url,
            "--format",
            "json",
            "--scope",
            "https://graph.microsoft.com/.default",
            "--subject-template",
            "teams",
            "environment",
            env=azure_env,
        )
        (grant,) = entra.entra.grants
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"access_token", "expires_on", "token_type"}
    assert answer["access_token"] == grant.access_token
    assert answer["token_type"] == "Bearer"
    assert isinstance(answer["expires_on"], int)
    assert grant.scope == "https://graph.microsoft.com/.default"
    assert grant.assertion.claims["sub"] == "teams:platform/environment:staging"


def test_a_subject_mismatch_is_one_line_saying_what_to_check(run: Run) -> None:
    with running_entra(run.credential(subject=run.subject.upper())) as entra:
        result = exchange_azure(run, entra.url)
    message = assert_error_line(result, EXIT_NOPERM, *secrets_of(run))
    assert "AADSTS700213" in message
    assert f"the subject we sent, {run.subject!r}" in message
    assert "eyJ" not in result.stderr


def test_an_issuer_mismatch(run: Run) -> None:
    with running_entra(run.credential(issuer=run.server.url + "/")) as entra:
        result = exchange_azure(run, entra.url)
    message = assert_error_line(result, EXIT_NOPERM, *secrets_of(run))
    assert "AADSTS700211" in message
    assert "no trailing slash" in message


def test_an_expired_assertion_may_be_retried(run: Run) -> None:
    later = ManualClock(datetime.now(UTC) + timedelta(hours=3))
    with running_entra(run.credential(), clock=later) as entra:
        result = exchange_azure(run, entra.url)
    message = assert_error_line(result, EXIT_TEMPFAIL, *secrets_of(run))
    assert "AADSTS700024" in message


def test_an_unreachable_authority(run: Run) -> None:
    result = exchange_azure(run, f"http://127.0.0.1:{free_port()}")
    message = assert_error_line(result, EXIT_TEMPFAIL, *secrets_of(run))
    assert "cannot reach the Entra authority" in message


def test_plain_http_to_another_host_is_refused(run: Run) -> None:
    result = exchange_azure(run, "http://login.example.com")
    message = assert_error_line(result, EXIT_USAGE, *secrets_of(run))
    assert "must be an https URL" in message


def test_no_api_key(run: Run) -> None:
    result = invoke_cli(
        run.server,
        "exchange",
        "azure",
        "--tenant-id",
        TENANT,
        "--client-id",
        CLIENT,
        env={"OZ_RUN_ID": run.agent.run_id},
    )
    message = assert_error_line(result, EXIT_USAGE)
    assert "no API key: set WARP_API_KEY or pass --api-key" in message


def test_no_tenant(run: Run) -> None:
    result = invoke_cli(run.server, "exchange", "azure", "--client-id", CLIENT, env=run.env())
    message = assert_error_line(result, EXIT_USAGE, *secrets_of(run))
    assert "--tenant-id" in message


# ---- azure-assertion ------------------------------------------------------------------


def test_the_assertion_on_stdout_is_an_rs256_entra_token(run: Run) -> None:
    # NOTE: the Oz CLI's duration grammar, as every command's --duration takes it
    result = invoke_cli(
        run.server,
        "azure-assertion",
        "--subject-template",
        "environment",
        "--duration",
        "15 min",
        env=run.env(),
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    claims = verify_with_pyjwt(token, run.server.url, ENTRA_AUDIENCE)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert claims["iss"] == run.server.url
    assert claims["sub"] == "environment:staging"
    assert claims["exp"] - claims["iat"] == 15 * 60


def test_the_assertion_file_is_private_and_replaced_whole(run: Run, tmp_path: Path) -> None:
    target = tmp_path / "federated-token"
    tokens = []
    for _ in range(2):
        result = invoke_cli(run.server, "azure-assertion", "--out", str(target), env=run.env())
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        assert str(target) in result.stderr
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        tokens.append(target.read_text())
    assert tokens[0] != tokens[1]
    assert list(tmp_path.iterdir()) == [target]
    claims = verify_with_pyjwt(tokens[1], run.server.url, ENTRA_AUDIENCE)
    assert claims["sub"] == run.subject


def test_an_assertion_file_that_cannot_be_written(run: Run, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "federated-token"  # its directory cannot exist
    result = invoke_cli(run.server, "azure-assertion", "--out", str(target), env=run.env())
    message = assert_error_line(result, 78, *secrets_of(run))
    assert f"cannot use directory {blocker}" in message


def test_an_assertion_file_gets_its_missing_directory(run: Run, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "federated-token"
    result = invoke_cli(run.server, "azure-assertion", "--out", str(target), env=run.env())
    assert result.returncode == 0, result.stderr
    assert target.read_text().count(".") == 2
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_a_finished_run_gets_no_assertion(run: Run) -> None:
    World.live(run.server).set_state(run.agent.run_id, "CANCELLED")
    result = invoke_cli(run.server, "azure-assertion", env=run.env())
    message = assert_error_line(result, 1, *secrets_of(run))
    assert run.agent.run_id in message
