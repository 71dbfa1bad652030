"""`client_credentials_token` with tokens from a real issuer process, against the Entra
stand-in: what Entra is shown, a fresh assertion per request, and each refusal turned
into an error that says what to check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from federation.clock import ManualClock
from federation.domain.tokens import ENTRA_AUDIENCE
from federation.errors import (
    InvalidRequest,
    NotAuthorized,
    OperationNotSupported,
    ResourceUnavailable,
)
from federation.exchange.azure import client_credentials_token
from federation.exchange.source import AccessToken
from federation.stand_ins.entra import FederatedCredential
from tests.exchange.azure_helpers import (
    CLIENT,
    SCOPE,
    TENANT,
    Run,
    checked_assertion,
    new_run,
    running_entra,
    upstream,
)
from tests.support import LiveServer, World, free_port, serve_issuer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("issuer")) as server:
        yield server


@pytest.fixture
def run(server: LiveServer) -> Run:
    return new_run(server)


def exchange(
    run: Run,
    authority: str,
    *,
    tenant_id: str = TENANT,
    scope: str = SCOPE,
    subject_template: tuple[str, ...] = (),
    timeout: float = 30.0,
) -> AccessToken:
    with run.source() as source:
        return client_credentials_token(
            source,
            tenant_id=tenant_id,
            client_id=CLIENT,
            scope=scope,
            authority=authority,
            subject_template=subject_template,
            timeout=timeout,
        )


def refusal(
    run: Run, credential: FederatedCredential, clock: ManualClock | None = None
) -> NotAuthorized:
    with running_entra(credential, clock=clock) as entra:
        with pytest.raises(NotAuthorized) as caught:
            exchange(run, entra.url)
        assert entra.entra.grants == []
    return caught.value


# ---- accepted -------------------------------------------------------------------------


def test_an_access_token_for_a_fresh_rs256_assertion(run: Run) -> None:
    before = datetime.now(UTC)
    with running_entra(run.credential()) as entra, run.source() as source:
        token = client_credentials_token(
            source, tenant_id=TENANT, client_id=CLIENT, scope=SCOPE, authority=entra.url
        )
        (grant,) = entra.entra.grants
        claims = checked_assertion(entra.entra, run)
    assert token.token == grant.access_token
    assert token.token_type == "Bearer"
    assert before + timedelta(seconds=3500) < token.expires_at
    assert token.expires_at <= datetime.now(UTC) + timedelta(seconds=3599)
    assert (grant.client_id, grant.scope) == (CLIENT, SCOPE)
    assert claims["run_id"] == run.agent.run_id
    # A short-lived assertion: it is spent at once.
    assert claims["exp"] - claims["iat"] <= 600


def test_every_request_carries_a_new_assertion(run: Run) -> None:
    with running_entra(run.credential()) as entra:
        first = exchange(run, entra.url)
        second = exchange(run, entra.url)
        claims = [checked_assertion(entra.entra, run, index) for index in (0, 1)]
    assert first.token != second.token
    assert claims[0]["jti"] != claims[1]["jti"]
    assert entra.entra.grants[0].assertion_jwt != entra.entra.grants[1].assertion_jwt


def test_a_subject_template_names_the_credential_subject(run: Run) -> None:
    credential = run.credential(subject="teams:platform/environment:staging")
    with running_entra(credential) as entra:
        exchange(run, entra.url, subject_template=("teams", "environment"))
        (grant,) = entra.entra.grants
    assert grant.assertion.claims["sub"] == "teams:platform/environment:staging"
    assert grant.credential == credential


def test_the_right_credential_among_several(run: Run) -> None:
    others = [
        run.credential(subject="user:someone-else"),
        run.credential(client_id="another-app"),
    ]
    with running_entra(*others, run.credential(name="ours")) as entra:
        exchange(run, entra.url)
        (grant,) = entra.entra.grants
    assert grant.credential.name == "ours"


# ---- refused by Entra -----------------------------------------------------------------


def test_issuer_with_a_trailing_slash(run: Run) -> None:
    error = refusal(run, run.credential(issuer=f"{run.server.url}/"))
    assert upstream(error) == {"service": "entra", "code": "invalid_client", "aadsts": 700211}
    assert "AADSTS700211" in error.message
    assert repr(run.server.url) in error.message
    assert "byte for byte" in error.message
    assert "no trailing slash" in error.message


def test_subject_differing_only_in_case(run: Run) -> None:
    error = refusal(run, run.credential(subject=run.subject.upper()))
    assert upstream(error)["aadsts"] == 700213
    assert upstream(error)["code"] == "invalid_client"
    assert f"the subject we sent, {run.subject!r}" in error.message
    assert "case-sensitive" in error.message


def test_no_credential_for_the_app(run: Run) -> None:
    error = refusal(run, run.credential(client_id="a-different-app"))
    assert upstream(error)["aadsts"] == 70021
    assert "wait a few minutes" in error.message
    assert repr(run.subject) in error.message
    assert ENTRA_AUDIENCE in error.message
    assert not error.retryable


def test_a_credential_for_another_audience(run: Run) -> None:
    error = refusal(run, run.credential(audience="api://AzureADTokenExchangeUSGov"))
    assert upstream(error)["aadsts"] == 700212
    assert f"audience must be {ENTRA_AUDIENCE}" in error.message


def test_an_assertion_outside_its_time_range(run: Run) -> None:
    # Entra's clock two hours ahead: the assertion looks expired, as a reused one would.
    later = ManualClock(datetime.now(UTC) + timedelta(hours=2))
    error = refusal(run, run.credential(), clock=later)
    assert upstream(error)["aadsts"] == 700024
    assert "valid time range" in error.message
    assert "clocks" in error.message
    assert error.retryable


def test_an_assertion_not_valid_yet(run: Run) -> None:
    earlier = ManualClock(datetime.now(UTC) - timedelta(hours=2))
    error = refusal(run, run.credential(), clock=earlier)
    assert upstream(error)["aadsts"] == 700024


def test_a_scope_without_default(run: Run) -> None:
    with running_entra(run.credential()) as entra, pytest.raises(InvalidRequest) as caught:
        exchange(run, entra.url, scope="https://management.azure.com/user_impersonation")
    assert upstream(caught.value) == {
        "service": "entra",
        "code": "invalid_scope",
        "aadsts": 1002012,
    }
    assert "https://management.azure.com/user_impersonation" in caught.value.message
    assert ".default" in caught.value.message


def test_an_unknown_tenant(run: Run) -> None:
    with running_entra(run.credential()) as entra, pytest.raises(InvalidRequest) as caught:
        exchange(run, entra.url, tenant_id="contoso.onmicrosoft.com")
    assert upstream(caught.value)["aadsts"] == 90002
    assert "--tenant-id" in caught.value.message


# ---- before Entra answers -------------------------------------------------------------


def test_an_unreachable_authority(run: Run) -> None:
    authority = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ResourceUnavailable) as caught:
        exchange(run, authority, timeout=5.0)
    assert upstream(caught.value) == {"service": "entra", "code": None, "aadsts": None}
    assert f"cannot reach the Entra authority at {authority}/{TENANT}/oauth2/v2.0/token" in (
        caught.value.message
    )
    assert caught.value.retryable


def test_an_issuer_refusal_is_the_issuers_error(run: Run, server: LiveServer) -> None:
    World.live(server).set_state(run.agent.run_id, "SUCCEEDED")
    with running_entra(run.credential()) as entra:
        with pytest.raises(OperationNotSupported) as caught:
            exchange(run, entra.url)
        assert entra.entra.grants == []
    assert run.agent.run_id in caught.value.message
