"""What GCP's refusals become: a FederationError whose detail says what to check, and
the upstream service and code in its extensions (what the broker endpoint returns)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from federation.clock import ManualClock
from federation.errors import (
    FederationError,
    InvalidRequest,
    NotAuthorized,
    ResourceNotFound,
    ResourceUnavailable,
)
from federation.exchange import gcp
from federation.stand_ins.gcp_sts import Condition
from tests.exchange.gcp_helpers import (
    OTHER_SERVICE_ACCOUNT,
    PROVIDER,
    SERVICE_ACCOUNT,
    Run,
    StandIn,
    new_run,
    principal,
    provider,
    running_gcp,
)
from tests.support import LiveServer, free_port, serve_issuer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("gcp-errors")) as server:
        yield server


@pytest.fixture
def run(server: LiveServer) -> Run:
    return new_run(server)


def refused(
    run: Run, stand_in: StandIn | None, kind: type[FederationError], **options: Any
) -> FederationError:
    """The error access_token raises; never a secret in what a user sees."""
    arguments: dict[str, Any] = {"audience": PROVIDER}
    if stand_in is not None:
        arguments.update(token_url=stand_in.token_url, impersonation_url_base=stand_in.url)
    arguments.update(options)
    with run.source() as source, pytest.raises(kind) as caught:
        gcp.access_token(source, **arguments)
    error = caught.value
    assert error.detail
    for secret in (run.agent.key, run.agent.workload_token):
        assert secret not in error.detail
    assert "eyJ" not in error.detail  # no token either
    return error


def upstream(error: FederationError) -> dict[str, str]:
    return dict(error.extensions["upstream"])


def test_a_token_for_another_audience(run: Run) -> None:
    with running_gcp([provider(run.server, allowed_audiences=("agents-gcp",))]) as stand_in:
        error = refused(run, stand_in, NotAuthorized)
    assert upstream(error) == {"service": "gcp-sts", "code": "invalid_grant"}
    assert "The audience in JWT does not match the expected values." in str(error.detail)
    assert "allowed audiences" in str(error.detail)
    assert "project number" in str(error.detail)


def test_a_provider_that_does_not_exist(run: Run) -> None:
    audience = PROVIDER.replace("/providers/federation", "/providers/federatoin")
    with running_gcp([provider(run.server)]) as stand_in:
        error = refused(run, stand_in, InvalidRequest, audience=audience)
    assert upstream(error) == {"service": "gcp-sts", "code": "invalid_request"}
    assert 'Invalid value for "audience"' in str(error.detail)
    assert "full resource name" in str(error.detail)
    assert "project number" in str(error.detail)


def test_an_audience_with_the_project_id_is_refused_before_any_call(run: Run) -> None:
    audience = PROVIDER.replace("/projects/123456789012/", "/projects/acme-prod/")
    error = refused(run, None, InvalidRequest, audience=audience, token_url="http://127.0.0.1:9")
    assert "project number" in str(error.detail)
    assert "upstream" not in error.extensions


def test_an_expired_token(run: Run) -> None:
    later = ManualClock(datetime.now(UTC) + timedelta(hours=2))
    with running_gcp([provider(run.server)], clock=later) as stand_in:
        error = refused(run, stand_in, NotAuthorized)
    assert upstream(error) == {"service": "gcp-sts", "code": "invalid_grant"}
    assert "expired" in str(error.detail)
    assert "clock" in str(error.detail)


def test_a_token_issued_in_the_future(run: Run) -> None:
    earlier = ManualClock(datetime.now(UTC) - timedelta(minutes=5))
    with running_gcp([provider(run.server)], clock=earlier) as stand_in:
        error = refused(run, stand_in, NotAuthorized)
    assert "iat must be in the past" in str(error.detail)
    assert "clock" in str(error.detail)


def test_a_foreign_issuer(run: Run) -> None:
    trusted = provider(run.server, issuer_uri="https://issuer.example.com")
    with running_gcp([trusted]) as stand_in:
        error = refused(run, stand_in, NotAuthorized)
    assert upstream(error) == {"service": "gcp-sts", "code": "invalid_grant"}
    assert "issuer" in str(error.detail)
    assert f"issuer URI must be exactly {run.server.url}" in str(error.detail)


def test_a_subject_over_127_bytes(server: LiveServer) -> None:
    run = new_run(server, agent_name="nightly-" + "x" * 130)
    custom = provider(run.server, allowed_audiences=("agents-gcp",))
    with running_gcp([custom]) as stand_in:
        error = refused(
            run,
            stand_in,
            NotAuthorized,
            token_audience="agents-gcp",
            subject_template=["agent_name"],
        )
    assert upstream(error) == {"service": "gcp-sts", "code": "invalid_grant"}
    assert "exceeds the 127 bytes limit" in str(error.detail)
    assert "--subject-template" in str(error.detail)


def test_the_issuer_refuses_a_long_subject_for_a_gcp_audience(server: LiveServer) -> None:
    run = new_run(server, agent_name="nightly-" + "x" * 130)
    with running_gcp([provider(run.server)]) as stand_in:
        error = refused(run, stand_in, InvalidRequest, subject_template=["agent_name"])
        assert not stand_in.gcp.exchanges
    assert "127" in str(error.detail)
    assert "upstream" not in error.extensions


def test_an_attribute_condition_that_refuses(run: Run) -> None:
    guarded = provider(run.server, condition=Condition(team="finance"))
    with running_gcp([guarded]) as stand_in:
        error = refused(run, stand_in, NotAuthorized)
    assert upstream(error) == {"service": "gcp-sts", "code": "unauthorized_client"}
    assert "rejected by the attribute condition" in str(error.detail)
    assert "assertion.teams" in str(error.detail)


def test_an_attribute_condition_that_holds(run: Run) -> None:
    guarded = provider(run.server, condition=Condition(team="platform", subject_prefix="user:"))
    with running_gcp([guarded]) as stand_in:
        with run.source() as source:
            gcp.access_token(source, audience=PROVIDER, token_url=stand_in.token_url)
        assert len(stand_in.gcp.exchanges) == 1


def test_impersonating_a_service_account_the_principal_may_not_use(run: Run) -> None:
    bindings = {SERVICE_ACCOUNT: [principal("user:someone-else")]}
    with running_gcp([provider(run.server)], bindings) as stand_in:
        error = refused(run, stand_in, NotAuthorized, service_account=SERVICE_ACCOUNT)
        assert len(stand_in.gcp.exchanges) == 1  # STS said yes; IAM said no
    assert upstream(error) == {"service": "gcp-iam", "code": "PERMISSION_DENIED"}
    detail = str(error.detail)
    assert "Permission 'iam.serviceAccounts.getAccessToken' denied" in detail
    assert "roles/iam.workloadIdentityUser" in detail
    assert principal(run.subject) in detail
    assert SERVICE_ACCOUNT in detail


def test_impersonating_a_service_account_that_does_not_exist(run: Run) -> None:
    bindings = {SERVICE_ACCOUNT: [principal(run.subject)]}
    with running_gcp([provider(run.server)], bindings) as stand_in:
        error = refused(run, stand_in, ResourceNotFound, service_account=OTHER_SERVICE_ACCOUNT)
    assert upstream(error) == {"service": "gcp-iam", "code": "NOT_FOUND"}
    assert OTHER_SERVICE_ACCOUNT in str(error.detail)


def test_a_lifetime_beyond_what_iam_allows(run: Run) -> None:
    bindings = {SERVICE_ACCOUNT: [principal(run.subject)]}
    with running_gcp([provider(run.server)], bindings) as stand_in:
        error = refused(
            run, stand_in, InvalidRequest, service_account=SERVICE_ACCOUNT, lifetime_seconds=7200
        )
    assert upstream(error) == {"service": "gcp-iam", "code": "INVALID_ARGUMENT"}
    assert "allowServiceAccountCredentialLifetimeExtension" in str(error.detail)


def test_sts_unreachable(run: Run) -> None:
    token_url = f"http://127.0.0.1:{free_port()}/v1/token"
    error = refused(run, None, ResourceUnavailable, token_url=token_url)
    assert error.retryable
    assert upstream(error) == {"service": "gcp-sts", "code": "unreachable"}
    assert token_url in str(error.detail)


def test_iam_unreachable(run: Run) -> None:
    with running_gcp([provider(run.server)]) as stand_in:
        error = refused(
            run,
            None,
            ResourceUnavailable,
            token_url=stand_in.token_url,
            impersonation_url_base=f"http://127.0.0.1:{free_port()}",
            service_account=SERVICE_ACCOUNT,
        )
    assert upstream(error) == {"service": "gcp-iam", "code": "unreachable"}
    assert "IAM Credentials at http://127.0.0.1:" in str(error.detail)
    assert "impersonation URL base" in str(error.detail)


def test_errors_render_as_problems_with_the_upstream_member(run: Run) -> None:
    with running_gcp([provider(run.server, condition=Condition(team="finance"))]) as stand_in:
        error = refused(run, stand_in, NotAuthorized)
    body = error.problem(instance="/api/v1/federate/gcp/access-token", trace_id=None)
    assert body["upstream"] == {"service": "gcp-sts", "code": "unauthorized_client"}
    assert body["status"] == 403
