"""The library path: google-auth's own identity_pool.Credentials fed by
FederationTokenSupplier, and access_token(), against the GCP stand-in with tokens from
a real issuer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.auth import exceptions, identity_pool
from google.auth.transport.requests import Request

from federation.errors import OperationNotSupported
from federation.exchange import gcp
from federation.exchange.source import AccessToken
from tests.exchange.gcp_helpers import (
    CLOUD_PLATFORM,
    PROVIDER,
    SERVICE_ACCOUNT,
    Run,
    StandIn,
    checked_exchange,
    new_run,
    principal,
    provider,
    running_gcp,
)
from tests.support import LiveServer, World, serve_issuer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("gcp-library")) as server:
        yield server


@pytest.fixture
def run(server: LiveServer) -> Run:
    return new_run(server)


def pool_credentials(**arguments: Any) -> Any:
    """google-auth's own identity_pool.Credentials (an untyped constructor)."""
    return identity_pool.Credentials(**arguments)  # type: ignore[no-untyped-call]


def refresh(credentials: Any) -> None:
    with requests.Session() as session:
        credentials.refresh(Request(session))


def exchange(run: Run, stand_in: StandIn, **options: Any) -> AccessToken:
    arguments: dict[str, Any] = {
        "audience": PROVIDER,
        "token_url": stand_in.token_url,
        "impersonation_url_base": stand_in.url,
        **options,
    }
    with run.source() as source:
        return gcp.access_token(source, **arguments)


def test_identity_pool_credentials_with_our_supplier(run: Run) -> None:
    with running_gcp([provider(run.server)]) as stand_in:
        with run.source() as source:
            supplier = gcp.FederationTokenSupplier(source, duration="20m")
            credentials = pool_credentials(
                audience=PROVIDER,
                subject_token_type=gcp.JWT_TOKEN_TYPE,
                token_url=stand_in.token_url,
                subject_token_supplier=supplier,
                scopes=[CLOUD_PLATFORM],
            )
            refresh(credentials)
            assert credentials.token.startswith("ya29.stand-in-sts.")
            refresh(credentials)  # google-auth does not cache subject tokens: a fresh one
        claims = checked_exchange(stand_in, run, PROVIDER)
        assert claims["aud"] == [PROVIDER]  # the audience google-auth asked with
        assert claims["exp"] - claims["iat"] == 1200
        assert supplier.last is not None
        assert supplier.last.subject == run.subject
        first, second = stand_in.gcp.exchanges
        assert first.claims["jti"] != second.claims["jti"]


def test_identity_pool_credentials_with_impersonation(run: Run) -> None:
    bindings = {SERVICE_ACCOUNT: [principal(run.subject)]}
    with running_gcp([provider(run.server)], bindings) as stand_in:
        with run.source() as source:
            credentials = pool_credentials(
                audience=PROVIDER,
                subject_token_type=gcp.JWT_TOKEN_TYPE,
                token_url=stand_in.token_url,
                subject_token_supplier=gcp.FederationTokenSupplier(source),
                service_account_impersonation_url=gcp.impersonation_url(
                    SERVICE_ACCOUNT, stand_in.url
                ),
                scopes=[CLOUD_PLATFORM],
            )
            refresh(credentials)
        assert credentials.token.startswith("ya29.stand-in-sa.")
        checked_exchange(stand_in, run, PROVIDER)
        (seen,) = stand_in.gcp.impersonations
        assert (seen.service_account, seen.principal) == (SERVICE_ACCOUNT, principal(run.subject))


def test_access_token_through_sts(run: Run) -> None:
    with running_gcp([provider(run.server)]) as stand_in:
        token = exchange(run, stand_in)
        assert token.token.startswith("ya29.stand-in-sts.")
        assert token.token_type == "Bearer"
        remaining = token.expires_at - datetime.now(UTC)
        assert timedelta(minutes=58) < remaining <= timedelta(hours=1)
        checked_exchange(stand_in, run, PROVIDER)
        assert not stand_in.gcp.impersonations


def test_access_token_with_impersonation(run: Run) -> None:
    bindings = {SERVICE_ACCOUNT: [f"principalSet://{PROVIDER[2:].split('/providers/')[0]}/*"]}
    with running_gcp([provider(run.server)], bindings) as stand_in:
        token = exchange(
            run,
            stand_in,
            service_account=SERVICE_ACCOUNT,
            scopes=("https://www.googleapis.com/auth/devstorage.read_only",),
            lifetime_seconds=1800,
        )
        assert token.token.startswith("ya29.stand-in-sa.")
        remaining = token.expires_at - datetime.now(UTC)
        assert timedelta(minutes=28) < remaining <= timedelta(minutes=30)
        (seen,) = stand_in.gcp.impersonations
        assert seen.scopes == ("https://www.googleapis.com/auth/devstorage.read_only",)
        assert seen.lifetime_seconds == 1800
        assert seen.principal == principal(run.subject)


def test_an_https_audience_is_the_token_audience(run: Run) -> None:
    with running_gcp([provider(run.server)]) as stand_in:
        exchange(run, stand_in, audience=f"https:{PROVIDER}")
        claims = checked_exchange(stand_in, run, f"https:{PROVIDER}")
        assert claims["aud"] == [f"https:{PROVIDER}"]
        assert stand_in.gcp.exchanges[-1].provider == PROVIDER  # STS got the // name


def test_allowed_audiences_and_a_subject_template(run: Run) -> None:
    with running_gcp([provider(run.server, allowed_audiences=("agents-gcp",))]) as stand_in:
        exchange(
            run,
            stand_in,
            token_audience="agents-gcp",
            subject_template=["teams", "environment"],
        )
        seen = stand_in.gcp.exchanges[-1]
        assert seen.claims["aud"] == ["agents-gcp"]
        assert seen.claims["sub"] == "teams:platform/environment:staging"


def test_a_finished_run_is_the_issuers_refusal(run: Run) -> None:
    World.live(run.server).set_state(run.agent.run_id, "SUCCEEDED")
    with running_gcp([provider(run.server)]) as stand_in:
        with pytest.raises(OperationNotSupported) as caught:
            exchange(run, stand_in)
        assert "upstream" not in caught.value.extensions
        assert not stand_in.gcp.exchanges


def test_the_supplier_raises_what_google_auth_expects(run: Run) -> None:
    World.live(run.server).set_state(run.agent.run_id, "FAILED")
    with run.source() as source:
        credentials = pool_credentials(
            audience=PROVIDER,
            subject_token_type=gcp.JWT_TOKEN_TYPE,
            token_url="http://127.0.0.1:9/v1/token",
            subject_token_supplier=gcp.FederationTokenSupplier(source),
            scopes=[CLOUD_PLATFORM],
        )
        with pytest.raises(exceptions.RefreshError) as caught:
            refresh(credentials)
    assert isinstance(caught.value.__cause__, OperationNotSupported)
    assert "the issuer did not issue a token" in str(caught.value)
