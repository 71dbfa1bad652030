"""What goes wrong in an AWS exchange, and what the error tells the user to check: each
with STS's code in the broker-ready ``extensions``, and never the token or credentials."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from federation.errors import (
    FederationError,
    InvalidRequest,
    NotAuthorized,
    OperationNotSupported,
    ResourceUnavailable,
)
from federation.exchange import aws
from federation.exchange.source import ApiTokenSource, MintedToken
from federation.stand_ins.aws_sts import AwsSts, OidcProvider, Role
from tests.exchange.aws_helpers import (
    ACCOUNT,
    ROLE_ARN,
    TAGGING_ROLE_ARN,
    ForeignIssuer,
    ShiftedClock,
    foreign_issuer,
    isolate_aws,
    module_client,
    new_agent,
    roles,
    source_for,
    stand_in,
)
from tests.support import Agent, LiveServer, World, free_port, serve_issuer

DEAD_ISSUER = f"http://127.0.0.1:{free_port()}"


OTHER_TEAM_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/other-team"
TAGGER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/tagger"


@pytest.fixture(scope="module")
def server(templates: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("aws-issuer")) as server:
        yield server


@pytest.fixture(scope="module")
def agent(server: LiveServer) -> Agent:
    return new_agent(server)


@pytest.fixture(scope="module")
def foreign() -> Iterator[ForeignIssuer]:
    """An issuer no provider is registered for."""
    with foreign_issuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def tagger() -> Iterator[ForeignIssuer]:
    """A registered issuer that signs what ours never would (tags over AWS's limits)."""
    with foreign_issuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture(scope="module")
def sts(
    server: LiveServer, tagger: ForeignIssuer, clock: ShiftedClock
) -> Iterator[tuple[str, AwsSts]]:
    # Our issuer, the tagger, and a provider whose discovery is on a closed port.
    providers = [
        OidcProvider(server.url),
        OidcProvider(tagger.url),
        OidcProvider(DEAD_ISSUER),
    ]
    more = [
        Role(OTHER_TEAM_ROLE_ARN, sub="scoped_principal:other-team/*"),
        Role(TAGGER_ROLE_ARN, provider=tagger.url, tag_session=True),
    ]
    with stand_in(providers, [*roles(), *more], clock=clock) as found:
        yield found


@pytest.fixture(scope="module")
def client(sts: tuple[str, AwsSts], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with module_client(sts[0], tmp_path_factory.mktemp("aws")) as found:
        yield found


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clock: ShiftedClock) -> None:
    isolate_aws(monkeypatch, tmp_path)
    clock.shift = timedelta(0)


class CountingSource:
    """A token source that counts what it mints (to show nothing was minted)."""

    def __init__(self, inner: ApiTokenSource) -> None:
        self.inner, self.minted = inner, 0

    @property
    def run_id(self) -> str:
        return self.inner.run_id

    def mint(self, audience: str, **options: Any) -> MintedToken:
        self.minted += 1
        return self.inner.mint(audience, **options)


def token_for(
    server: LiveServer, agent: Agent, audience: str = aws.AUDIENCE, **options: Any
) -> str:
    source = source_for(server, agent)
    with source.client:
        return source.mint(audience, subject_template=aws.SUBJECT_TEMPLATE, **options).token


def refused(token: str, client: Any, role_arn: str = ROLE_ARN, **options: Any) -> FederationError:
    with pytest.raises(FederationError) as caught:
        aws.assume_role(token, role_arn=role_arn, session_name="s1", client=client, **options)
    error = caught.value
    assert token not in error.message
    assert token[:40] not in str(error.extensions)
    return error


def upstream(error: FederationError) -> str:
    found = error.extensions["upstream"]
    assert found["service"] == "aws-sts"
    return str(found["code"])


def test_wrong_audience(server: LiveServer, agent: Agent, client: Any) -> None:
    error = refused(token_for(server, agent, "api://something-else"), client)
    assert isinstance(error, NotAuthorized)
    assert upstream(error) == "InvalidIdentityToken"
    assert "audience api://something-else is not a client ID" in str(error.detail)


def test_expired_token(server: LiveServer, agent: Agent, client: Any, clock: ShiftedClock) -> None:
    token = token_for(server, agent)
    clock.shift = timedelta(hours=4)
    error = refused(token, client)
    assert upstream(error) == "ExpiredTokenException"
    assert not error.retryable
    assert "mint a fresh token" in str(error.detail)
    assert "clocks" in str(error.detail)


def test_a_foreign_issuer_is_not_a_registered_provider(foreign: ForeignIssuer, client: Any) -> None:
    error = refused(foreign.token(), client)
    assert isinstance(error, NotAuthorized)
    assert upstream(error) == "InvalidIdentityToken"
    detail = str(error.detail)
    assert f"no IAM OIDC identity provider for the token's issuer {foreign.url}" in detail
    assert "byte for byte" in detail
    assert "no trailing slash" in detail


def test_provider_keys_out_of_reach_is_worth_a_retry(tagger: ForeignIssuer, client: Any) -> None:
    error = refused(tagger.token(iss=DEAD_ISSUER), client)
    assert isinstance(error, ResourceUnavailable)
    assert error.retryable
    assert upstream(error) == "InvalidIdentityToken"
    assert "jwks_uri must be reachable" in str(error.detail)


def test_a_subject_the_trust_policy_does_not_match(
    server: LiveServer, agent: Agent, client: Any
) -> None:
    error = refused(token_for(server, agent), client, OTHER_TEAM_ROLE_ARN)
    assert isinstance(error, NotAuthorized)
    assert upstream(error) == "AccessDenied"
    detail = str(error.detail)
    host = server.url.split("://")[1]
    assert OTHER_TEAM_ROLE_ARN in detail
    assert f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}" in detail
    assert f"{host}:sub condition matching 'scoped_principal:platform/user:{agent.uid}'" in detail
    assert f"{host}:aud = sts.amazonaws.com" in detail
    assert "sts:TagSession" not in detail


def test_a_role_that_does_not_exist(server: LiveServer, agent: Agent, client: Any) -> None:
    error = refused(token_for(server, agent), client, f"arn:aws:iam::{ACCOUNT}:role/nope")
    assert upstream(error) == "AccessDenied"
    assert "(or does not exist)" in str(error.detail)


def test_more_than_the_roles_maximum_session(server: LiveServer, agent: Agent, client: Any) -> None:
    error = refused(token_for(server, agent), client, duration_seconds=7200)
    assert isinstance(error, InvalidRequest)
    assert upstream(error) == "ValidationError"
    assert "7200s is more than the role's MaxSessionDuration" in str(error.detail)


def test_a_malformed_session_policy(server: LiveServer, agent: Agent, client: Any) -> None:
    error = refused(token_for(server, agent), client, policy='{"Version": "2012-10-17"}')
    assert upstream(error) == "MalformedPolicyDocument"
    assert "not a valid IAM policy" in str(error.detail)


@pytest.mark.parametrize(
    ("options", "detail"),
    [
        ({"session_name": "has space"}, "2 to 64 characters"),
        ({"session_name": "x"}, "2 to 64 characters"),
        ({"duration_seconds": 899}, "900 to 43200 seconds"),
        ({"duration_seconds": 43201}, "900 to 43200 seconds"),
        ({"role_arn": "arn:aws:sts::123456789012:assumed-role/deploy/x"}, "the IAM role"),
        ({"policy": "x" * 2049}, "1 to 2048 characters"),
        ({"policy": "{\u2028}"}, "U+0020 to U+00FF"),
        ({"policy_arns": [f"arn:aws:iam::{ACCOUNT}:policy/p{n}" for n in range(11)]}, "at most 10"),
        ({"policy_arns": ["arn:aws:s3:::bucket"]}, "policy/name"),
    ],
)
def test_requests_sts_would_refuse_are_refused_before_minting(
    server: LiveServer, agent: Agent, client: Any, options: dict[str, Any], detail: str
) -> None:
    source = CountingSource(source_for(server, agent))
    arguments: dict[str, Any] = {"role_arn": ROLE_ARN, **options}
    with source.inner.client, pytest.raises(InvalidRequest) as caught:
        aws.credentials(source, client=client, **arguments)
    assert detail in str(caught.value.detail)
    assert source.minted == 0


@pytest.mark.parametrize(
    ("tags", "detail"),
    [
        (["team"] * 17, "aws_session_tags"),
        (["department"], "unknown AWS session tag 'department'"),
    ],
)
def test_tags_over_the_limits_are_refused_by_the_issuer(
    server: LiveServer, agent: Agent, client: Any, tags: Sequence[str], detail: str
) -> None:
    source = source_for(server, agent)
    with source.client, pytest.raises(InvalidRequest) as caught:
        aws.credentials(source, role_arn=TAGGING_ROLE_ARN, aws_session_tags=tags, client=client)
    assert detail in str(caught.value.detail)


@pytest.mark.parametrize(
    "principal_tags",
    [
        {f"t{n}": ["v"] for n in range(51)},
        {"k" * 129: ["v"]},
        {"k": ["v" * 257]},
        {"aws:team": ["v"]},
        {"k": ["one", "two"]},
    ],
)
def test_tags_over_awss_limits_are_refused_by_sts(
    tagger: ForeignIssuer,
    sts: tuple[str, AwsSts],
    client: Any,
    principal_tags: dict[str, list[str]],
) -> None:
    """Tokens our issuer would never sign, from the tagger."""
    claim: dict[str, Any] = {"https://aws.amazon.com/tags": {"principal_tags": principal_tags}}
    before = len(sts[1].sessions)
    error = refused(tagger.token(**claim), client, TAGGER_ROLE_ARN, tags_sent=True)
    assert upstream(error) in {"ValidationError", "InvalidIdentityToken"}
    assert len(sts[1].sessions) == before
    # One tag within the limits is taken.
    tags: dict[str, Any] = {"https://aws.amazon.com/tags": {"principal_tags": {"k": ["v"]}}}
    good = tagger.token(**tags)
    aws.assume_role(good, role_arn=TAGGER_ROLE_ARN, session_name="s1", client=client)
    assert sts[1].sessions[-1].tags == {"k": "v"}


def test_sts_unreachable(server: LiveServer, agent: Agent) -> None:
    client = aws.sts_client(endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=1)
    error = refused(token_for(server, agent), client)
    assert isinstance(error, ResourceUnavailable)
    assert error.retryable
    assert upstream(error) == "unreachable"
    assert "cannot reach AWS STS at http://127.0.0.1:" in str(error.detail)


def test_a_finished_run_gets_no_token_to_trade(server: LiveServer, client: Any) -> None:
    finished = new_agent(server)
    World.live(server).set_state(finished.run_id, "SUCCEEDED")
    source = source_for(server, finished)
    with source.client, pytest.raises(FederationError) as caught:
        aws.credentials(source, role_arn=ROLE_ARN, client=client)
    assert caught.value.code == "operation_not_supported"


class Refusing:
    """A botocore-shaped STS client that answers every call with one error."""

    class meta:  # the shape of a botocore client
        endpoint_url = "https://sts.us-east-1.amazonaws.com"
        region_name = "us-east-1"

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        self.code, self.message, self.status = code, message, status

    def assume_role_with_web_identity(self, **_: Any) -> Any:
        from botocore.exceptions import ClientError

        error = {"Code": self.code, "Message": self.message}
        metadata = {"HTTPStatusCode": self.status}
        raise ClientError({"Error": error, "ResponseMetadata": metadata}, "AssumeRole")


@pytest.mark.parametrize(
    ("code", "message", "status", "kind", "detail"),
    [
        ("IDPCommunicationError", "timed out", 400, ResourceUnavailable, "try again"),
        ("RegionDisabledException", "", 403, OperationNotSupported, "region us-east-1"),
        ("PackedPolicyTooLarge", "", 400, InvalidRequest, "fewer policy ARNs or session tags"),
        ("IDPRejectedClaim", "", 403, NotAuthorized, "trust policy must allow"),
        ("Throttling", "Rate exceeded", 400, ResourceUnavailable, "try again later"),
        ("InternalFailure", "", 500, ResourceUnavailable, "HTTP 500"),
        ("SomethingNew", "Odd.", 400, InvalidRequest, "STS refused the request: Odd"),
    ],
)
def test_what_else_sts_may_answer(
    code: str, message: str, status: int, kind: type[FederationError], detail: str
) -> None:
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    with pytest.raises(kind) as caught:
        aws.assume_role(
            token, role_arn=ROLE_ARN, session_name="s1", client=Refusing(code, message, status)
        )
    assert detail in str(caught.value.detail)
    assert caught.value.retryable is (kind is ResourceUnavailable)
    assert upstream(caught.value) == code


def test_sts_messages_that_could_carry_a_token_are_not_repeated() -> None:
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    message = f"1 validation error detected: Value '{token}' at 'webIdentityToken'"
    with pytest.raises(InvalidRequest) as caught:
        aws.assume_role(
            token, role_arn=ROLE_ARN, session_name="s1", client=Refusing("ValidationError", message)
        )
    assert "eyJ" not in caught.value.message
    assert caught.value.extensions["upstream"]["code"] == "ValidationError"
