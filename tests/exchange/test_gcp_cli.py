"""`federation exchange gcp` (the entry point's ``main``, in process) and `federation
stand-in gcp`, which serves until stopped, as a real process (stopped with a deadline)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from federation.cli import cli
from federation.exchange import gcp
from tests.cli.helpers import assert_error_line, run_federation
from tests.exchange.gcp_helpers import (
    PROVIDER,
    SERVICE_ACCOUNT,
    Run,
    checked_exchange,
    new_run,
    principal,
    provider,
    running_gcp,
)
from tests.support import LiveServer, federation_command, free_port, serve_issuer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("gcp-cli")) as server:
        yield server


@pytest.fixture
def run(server: LiveServer) -> Run:
    return new_run(server)


def test_exchange_gcp_prints_the_access_token(run: Run) -> None:
    bindings = {SERVICE_ACCOUNT: [principal(run.subject)]}
    with running_gcp([provider(run.server)], bindings) as stand_in:
        urls = ("--token-url", stand_in.token_url, "--impersonation-url-base", stand_in.url)
        env = run.cli("exchange", "gcp", "--audience", PROVIDER, *urls)
        assert env.returncode == 0, env.stderr
        name, _, token = env.stdout.strip().partition("=")
        assert name == "CLOUDSDK_AUTH_ACCESS_TOKEN"
        assert token.startswith("ya29.stand-in-sts.")
        assert env.stderr == ""
        checked_exchange(stand_in, run, PROVIDER)

        as_json = run.cli(
            *("exchange", "gcp", "--audience", PROVIDER, "--format", "json"),
            *("--service-account", SERVICE_ACCOUNT, "--scope", "https://x.test/a"),
            *("--scope", "https://x.test/b", *urls),
        )
        assert as_json.returncode == 0, as_json.stderr
        document = json.loads(as_json.stdout)
        assert set(document) == {"access_token", "expires_at", "token_type"}
        assert document["access_token"].startswith("ya29.stand-in-sa.")
        assert document["token_type"] == "Bearer"
        expires = datetime.fromisoformat(document["expires_at"].replace("Z", "+00:00"))
        assert timedelta(minutes=58) < expires - datetime.now(UTC) <= timedelta(hours=1)
        (seen,) = stand_in.gcp.impersonations
        assert seen.scopes == ("https://x.test/a", "https://x.test/b")


def test_exchange_gcp_refusals_are_one_line(run: Run) -> None:
    bindings = {SERVICE_ACCOUNT: [principal("user:someone-else")]}
    with running_gcp([provider(run.server)], bindings) as stand_in:
        result = run.cli(
            *("exchange", "gcp", "--audience", PROVIDER, "--service-account", SERVICE_ACCOUNT),
            FEDERATION_GCP_STS_URL=stand_in.token_url,
            FEDERATION_GCP_IAM_URL=stand_in.url,
        )
    message = assert_error_line(result, 77, run.agent.key, run.agent.workload_token, "ya29.")
    assert "roles/iam.workloadIdentityUser" in message
    assert principal(run.subject) in message


def test_exchange_gcp_when_gcp_is_unreachable(run: Run) -> None:
    token_url = f"http://127.0.0.1:{free_port()}/v1/token"
    result = run.cli("exchange", "gcp", "--audience", PROVIDER, "--token-url", token_url)
    message = assert_error_line(result, 75, run.agent.key)  # retryable
    assert f"cannot reach GCP STS at {token_url}" in message


def test_exchange_gcp_needs_a_key(run: Run) -> None:
    result = run.cli("exchange", "gcp", "--audience", PROVIDER, WARP_API_KEY="")
    assert "WARP_API_KEY" in assert_error_line(result, 2)


def test_the_executable_command_is_hidden(run: Run) -> None:
    listing = run.cli("--help")
    assert "gcp-credential-config" in listing.stdout
    assert "issue-gcp-token" not in listing.stdout


@pytest.fixture
def stand_in_process(run: Run) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`federation stand-in gcp` trusting the issuer, its URL read from its first line."""
    process = subprocess.Popen(
        federation_command(
            *("stand-in", "gcp", "--issuer", run.server.url, "--provider", PROVIDER),
            *("--service-account", f"{SERVICE_ACCOUNT}={principal(run.subject)}"),
            *("--require-team", "platform", "--port", "0"),
        ),
        env=run.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        stdout = process.stdout
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=20)  # bounded: a stand-in that never starts fails the test
        assert first, "the stand-in printed no URL"
        assert first[0].startswith("http://127.0.0.1:"), first[0]
        yield first[0].strip(), process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_the_stand_in_command(
    run: Run, stand_in_process: tuple[str, subprocess.Popen[str]]
) -> None:
    url, _ = stand_in_process
    with run.source() as source:
        token = gcp.access_token(
            source,
            audience=PROVIDER,
            service_account=SERVICE_ACCOUNT,
            token_url=f"{url}/v1/token",
            impersonation_url_base=url,
        )
    assert token.token.startswith("ya29.stand-in-sa.")


def test_the_stand_in_command_refuses_a_bad_provider(run: Run) -> None:
    # A process: a stand-in that serves after all is killed after 30 s (the test fails).
    result = run_federation(
        run.server.home,
        run.env(),
        *("stand-in", "gcp", "--issuer", run.server.url),
        *("--provider", PROVIDER.replace("123456789012", "acme-prod")),
        timeout=30,
    )
    assert "resource name" in assert_error_line(result, 2)
    bad_binding = CliRunner().invoke(
        cli,
        [
            *("stand-in", "gcp", "--issuer", run.server.url, "--provider", PROVIDER),
            *("--service-account", SERVICE_ACCOUNT),
        ],
    )
    assert bad_binding.exit_code == 2
    assert "expected SA=PRINCIPAL" in bad_binding.output
