"""``assume_role`` and ``credentials`` against the STS stand-in, through boto3, with
tokens from a real issuer; the tokens are checked with PyJWT, not our own code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from federation.errors import ConfigurationError, InvalidRequest, NotAuthorized
from federation.exchange import aws
from federation.stand_ins.aws_sts import AwsSts, OidcProvider
from tests.cli.helpers import verify_with_pyjwt
from tests.exchange.aws_helpers import (
    ACCOUNT,
    ROLE_ARN,
    TAGGING_ROLE_ARN,
    isolate_aws,
    module_client,
    new_agent,
    roles,
    source_for,
    stand_in,
)
from tests.support import LiveServer, serve_issuer

TAGS_CLAIM = "https://aws.amazon.com/tags"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)


@pytest.fixture(scope="module")
def server(templates: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("aws-issuer")) as server:
        yield server


@pytest.fixture(scope="module")
def sts(server: LiveServer) -> Iterator[tuple[str, AwsSts]]:
    with stand_in([OidcProvider(server.url)], roles()) as found:
        yield found


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def client(sts: tuple[str, AwsSts], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with module_client(sts[0], tmp_path_factory.mktemp("aws")) as found:
        yield found


def test_credentials_assume_the_role_as_the_runs_session(
    server: LiveServer, sts: tuple[str, AwsSts], client: Any
) -> None:
    agent = new_agent(server)
    source = source_for(server, agent)
    with source.client:
        found = aws.credentials(source, role_arn=ROLE_ARN, client=client)
    granted = sts[1].sessions[-1]
    assert granted.role_arn == ROLE_ARN
    assert granted.session_name == f"Oz_Run_{agent.run_id}"
    assert granted.subject == f"scoped_principal:platform/user:{agent.uid}"
    assert granted.audience == "sts.amazonaws.com"
    assert granted.provider == server.url
    assert granted.duration_seconds == 3600
    assert granted.policy is None
    assert granted.policy_arns == ()
    assert found.access_key_id == granted.access_key_id
    assert found.assumed_role_arn == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/Oz_Run_{agent.run_id}"
    )
    remaining = found.expiration - datetime.now(UTC)
    assert timedelta(minutes=59) < remaining <= timedelta(hours=1)
    assert found.secret_access_key not in repr(found)
    assert found.session_token not in repr(found)


def test_a_token_for_sts_as_aws_would_check_it(
    server: LiveServer, sts: tuple[str, AwsSts], client: Any
) -> None:
    """The token ``credentials`` sends is what `assume_role` gets from the source: check
    one minted the same way with PyJWT, through discovery and the JWKS."""
    agent = new_agent(server)
    source = source_for(server, agent)
    with source.client:
        minted = source.mint(
            aws.AUDIENCE,
            duration=aws.EXCHANGE_TOKEN_DURATION,
            subject_template=aws.SUBJECT_TEMPLATE,
        )
    claims = verify_with_pyjwt(minted.token, server.url, "sts.amazonaws.com")
    assert claims["iss"] == server.url
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert claims["sub"] == f"scoped_principal:platform/user:{agent.uid}"
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert jwt.get_unverified_header(minted.token)["alg"] in {"ES256", "RS256"}
    found = aws.assume_role(
        minted.token, role_arn=ROLE_ARN, session_name="ci-nightly", client=client
    )
    assert sts[1].sessions[-1].session_name == "ci-nightly"
    assert found.assumed_role_arn is not None
    assert found.assumed_role_arn.endswith("/deploy/ci-nightly")


def test_session_policies_and_duration_are_passed_through(
    server: LiveServer, sts: tuple[str, AwsSts], client: Any
) -> None:
    agent = new_agent(server)
    arns = (
        f"arn:aws:iam::{ACCOUNT}:policy/read-only",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
    )
    source = source_for(server, agent)
    with source.client:
        found = aws.credentials(
            source,
            role_arn=TAGGING_ROLE_ARN,
            session_name="deploy@staging",
            duration_seconds=7200,
            policy=POLICY,
            policy_arns=arns,
            client=client,
        )
    granted = sts[1].sessions[-1]
    assert granted.policy == POLICY
    assert granted.policy_arns == arns
    assert granted.duration_seconds == 7200
    assert granted.session_name == "deploy@staging"
    assert found.expiration - datetime.now(UTC) > timedelta(minutes=119)


def test_session_tags_travel_in_the_token_to_a_role_that_allows_tag_session(
    server: LiveServer, sts: tuple[str, AwsSts], client: Any
) -> None:
    agent = new_agent(server, environment="prod")
    source = source_for(server, agent)
    with source.client:
        minted = source.mint(
            aws.AUDIENCE, subject_template=aws.SUBJECT_TEMPLATE, aws_session_tags=["environment"]
        )
        claims = verify_with_pyjwt(minted.token, server.url, "sts.amazonaws.com")
        assert claims[TAGS_CLAIM] == {"principal_tags": {"environment": ["prod"]}}
        aws.credentials(
            source,
            role_arn=TAGGING_ROLE_ARN,
            aws_session_tags=["environment", "team", "run_id"],
            client=client,
        )
    assert sts[1].sessions[-1].tags == {
        "environment": "prod",
        "team": "platform",
        "run_id": agent.run_id,
    }


def test_a_role_without_tag_session_refuses_tags_and_says_so(
    server: LiveServer, sts: tuple[str, AwsSts], client: Any
) -> None:
    agent = new_agent(server)
    source = source_for(server, agent)
    before = len(sts[1].sessions)
    with source.client:
        with pytest.raises(NotAuthorized) as caught:
            aws.credentials(source, role_arn=ROLE_ARN, aws_session_tags=["team"], client=client)
        error = caught.value
        assert error.extensions == {"upstream": {"service": "aws-sts", "code": "AccessDenied"}}
        assert "sts:TagSession" in str(error.detail)
        assert ROLE_ARN in str(error.detail)
        assert len(sts[1].sessions) == before
        # Without tags, the same role takes the same run.
        aws.credentials(source, role_arn=ROLE_ARN, client=client)


def test_every_output_form(server: LiveServer, client: Any) -> None:
    agent = new_agent(server)
    source = source_for(server, agent)
    with source.client:
        found = aws.credentials(source, role_arn=ROLE_ARN, client=client)
    document = found.as_credential_process()
    assert document["Version"] == 1
    assert document["AccessKeyId"] == found.access_key_id
    assert document["SecretAccessKey"] == found.secret_access_key
    assert document["SessionToken"] == found.session_token
    assert document["AccountId"] == ACCOUNT
    assert document["Expiration"].endswith("Z")
    parsed = datetime.strptime(document["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert parsed == found.expiration.replace(microsecond=0)
    env = found.as_env()
    assert env["AWS_ACCESS_KEY_ID"] == found.access_key_id
    assert env["AWS_SECRET_ACCESS_KEY"] == found.secret_access_key
    assert env["AWS_SESSION_TOKEN"] == found.session_token
    assert env["AWS_CREDENTIAL_EXPIRATION"] == document["Expiration"]
    ini = found.as_ini("ci")
    assert ini.startswith("[ci]\n")
    assert f"aws_session_token = {found.session_token}\n" in ini


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("Oz_Run_abc", True),
        ("a=b,c.d@e-f+g", True),
        ("x" * 64, True),
        ("x", False),
        ("x" * 65, False),
        ("has space", False),
        ("slash/no", False),
        ("naïve", False),
    ],
)
def test_session_names_follow_sts_pattern(name: str, valid: bool) -> None:
    if valid:
        assert aws.validate_session_name(name) == name
    else:
        with pytest.raises(InvalidRequest, match="2 to 64 characters"):
            aws.validate_session_name(name)


def test_default_session_name_is_ozs() -> None:
    assert aws.default_session_name("r1") == "Oz_Run_r1"
    longest = "r" * 57  # the longest run id the issuer registers
    assert aws.validate_session_name(aws.default_session_name(longest))


def test_the_sts_client_is_unsigned_and_refuses_plain_http_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore import UNSIGNED

    client = aws.sts_client(region="eu-west-1")
    assert client.meta.config.signature_version is UNSIGNED
    assert client.meta.endpoint_url == "https://sts.eu-west-1.amazonaws.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    assert aws.sts_client().meta.endpoint_url == "http://127.0.0.1:9"
    with pytest.raises(ConfigurationError, match="plain http"):
        aws.sts_client(endpoint_url="http://sts.example.com")
