"""Microsoft's own clients against the Entra stand-in, with assertions from a real
issuer: azure-identity's ``ClientAssertionCredential`` with our callback,
``WorkloadIdentityCredential`` reading a file `federation azure-assertion --out` wrote,
and MSAL (which reads the tenant's discovery document first).

azure-identity and MSAL refuse a non-https authority, so the stand-in serves TLS with a
throwaway certificate for 127.0.0.1 that the clients are told to trust."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, WorkloadIdentityCredential

from federation.exchange.azure import assertion_callback
from tests.cli.helpers import invoke_cli
from tests.exchange.azure_helpers import (
    CLIENT,
    SCOPE,
    TENANT,
    Run,
    checked_assertion,
    new_run,
    running_entra,
    self_signed,
)
from tests.support import LiveServer, serve_issuer

GRAPH = "https://graph.microsoft.com/.default"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("issuer")) as server:
        yield server


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def run(server: LiveServer) -> Run:
    return new_run(server)


def test_client_assertion_credential_mints_for_every_token(
    run: Run, tls: tuple[Path, Path]
) -> None:
    certificate = str(tls[0])
    with (
        running_entra(run.credential(), tls=tls) as entra,
        run.source() as source,
        ClientAssertionCredential(
            TENANT,
            CLIENT,
            assertion_callback(source),
            authority=entra.url,
            connection_verify=certificate,
        ) as credential,
    ):
        management = credential.get_token(SCOPE)
        graph = credential.get_token(GRAPH)
        cached = credential.get_token(SCOPE)
        grants = entra.entra.grants
        claims = [checked_assertion(entra.entra, run, index) for index in (0, 1)]
    assert entra.url.startswith("https://127.0.0.1:")
    # Two token requests, two assertions; the cached token needed none.
    assert [grant.scope for grant in grants] == [SCOPE, GRAPH]
    assert claims[0]["jti"] != claims[1]["jti"]
    assert [management.token, graph.token] == [grant.access_token for grant in grants]
    assert cached.token == management.token


def test_azure_identity_reports_entras_refusal(
    run: Run, tls: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    # NOTE: the error holds Entra's answer, and with it a connection that the stand-in
    # waits for when it stops: keep only its message, and keep azure-identity from
    # logging it (the captured record would hold it too).
    caplog.set_level(logging.ERROR, logger="azure.identity")
    wrong = run.credential(subject=run.subject.upper())
    with (
        running_entra(wrong, tls=tls) as entra,
        run.source() as source,
        ClientAssertionCredential(
            TENANT,
            CLIENT,
            assertion_callback(source),
            authority=entra.url,
            connection_verify=str(tls[0]),
        ) as credential,
    ):
        try:
            credential.get_token(SCOPE)
        except ClientAuthenticationError as error:
            message = str(error.message)
        else:
            pytest.fail("azure-identity took an assertion whose subject differs in case")
    assert "(invalid_client) AADSTS700213: No matching federated identity record" in message
    assert repr(run.subject) in message


def test_workload_identity_credential_reads_the_assertion_file(
    run: Run, tls: tuple[Path, Path], tmp_path: Path
) -> None:
    token_file = tmp_path / "azure-federated-token"
    written = invoke_cli(run.server, "azure-assertion", "--out", str(token_file), env=run.env())
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert f"sub {run.subject!r}" in written.stderr
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    with (
        running_entra(run.credential(), tls=tls) as entra,
        WorkloadIdentityCredential(
            tenant_id=TENANT,
            client_id=CLIENT,
            token_file_path=str(token_file),
            authority=entra.url,
            connection_verify=str(tls[0]),
        ) as credential,
    ):
        token = credential.get_token(SCOPE)
        (grant,) = entra.entra.grants
        claims = checked_assertion(entra.entra, run)
    assert token.token == grant.access_token
    assert grant.assertion_jwt == token_file.read_text()
    assert claims["sub"] == run.subject


def test_msal_finds_the_token_endpoint_through_discovery(
    run: Run, tls: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # MSAL's requests session trusts what REQUESTS_CA_BUNDLE names.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))
    with (
        running_entra(run.credential(), tls=tls) as entra,
        run.source() as source,
        requests.Session() as session,
    ):
        application = msal.ConfidentialClientApplication(
            CLIENT,
            client_credential={"client_assertion": assertion_callback(source)},
            authority=f"{entra.url}/{TENANT}",
            instance_discovery=False,
            http_client=session,
        )
        first = application.acquire_token_for_client(scopes=[SCOPE])
        second = application.acquire_token_for_client(scopes=[GRAPH])
        grants = entra.entra.grants
    assert first["token_type"] == "Bearer"
    assert [first["access_token"], second["access_token"]] == [g.access_token for g in grants]
    assert grants[0].assertion.claims["jti"] != grants[1].assertion.claims["jti"]
