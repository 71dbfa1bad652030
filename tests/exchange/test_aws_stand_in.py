"""The AWS STS stand-in itself: STS's query protocol as boto3 speaks it, the checks STS
makes, and ``federation stand-in aws`` serving it. Tokens come from a second issuer
whose tokens PyJWT signs, so the stand-in (joserfc) checks code it does not share."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from federation.policy import aws as tester
from federation.stand_ins.aws_sts import AwsSts, OidcProvider, Role
from federation.stand_ins.aws_sts_requests import StsError
from federation.stand_ins.issuers import IssuerKeys
from tests.exchange.aws_helpers import (
    ACCOUNT,
    ROLE_ARN,
    TEAM_PATTERN,
    ForeignIssuer,
    foreign_issuer,
    isolate_aws,
    module_client,
    stand_in,
)
from tests.support import federation_command

PICKY_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/path/to/picky"
SUB = "scoped_principal:platform/user:mallory"


@pytest.fixture(scope="module")
def issuer() -> Iterator[ForeignIssuer]:
    with foreign_issuer() as found:
        yield found


@pytest.fixture(scope="module")
def other() -> Iterator[ForeignIssuer]:
    with foreign_issuer() as found:
        yield found


@pytest.fixture(scope="module")
def sts(issuer: ForeignIssuer, other: ForeignIssuer) -> Iterator[tuple[str, AwsSts]]:
    providers = [
        OidcProvider(issuer.url, ("sts.amazonaws.com", "custom-audience")),
        OidcProvider(other.url),
    ]
    roles = [
        Role(ROLE_ARN, sub=TEAM_PATTERN),
        Role(PICKY_ROLE_ARN, sub="scoped_principal:platform/user:mallor?", provider=issuer.url),
    ]
    with stand_in(providers, roles) as found:
        yield found


@pytest.fixture(scope="module")
def client(sts: tuple[str, AwsSts], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with module_client(sts[0], tmp_path_factory.mktemp("aws")) as found:
        yield found


def assume(client: Any, token: str, role_arn: str = ROLE_ARN, **more: Any) -> dict[str, Any]:
    answer: dict[str, Any] = client.assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName="stand-in", WebIdentityToken=token, **more
    )
    return answer


def refusal(client: Any, token: str, role_arn: str = ROLE_ARN, **more: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        assume(client, token, role_arn, **more)
    error = caught.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def test_the_answer_has_every_field_boto3_parses(
    issuer: ForeignIssuer, client: Any, sts: tuple[str, AwsSts]
) -> None:
    answer = assume(client, issuer.token(), DurationSeconds=900)
    assert answer["SubjectFromWebIdentityToken"] == SUB
    assert answer["Audience"] == "sts.amazonaws.com"
    host = issuer.url.split("://")[1]
    assert answer["Provider"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
    user = answer["AssumedRoleUser"]
    assert user["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/stand-in"
    assert user["AssumedRoleId"].startswith("AROA")
    assert user["AssumedRoleId"].endswith(":stand-in")
    credentials = answer["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert len(credentials["AccessKeyId"]) == 20
    assert credentials["SecretAccessKey"]
    assert credentials["SessionToken"]
    lifetime = credentials["Expiration"] - datetime.now(UTC)
    assert timedelta(seconds=890) < lifetime <= timedelta(seconds=900)
    assert answer["PackedPolicySize"] == 0
    assert answer["ResponseMetadata"]["RequestId"]
    assert sts[1].sessions[-1].access_key_id == credentials["AccessKeyId"]


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "RS256", "RS384", "RS512"])
def test_awss_algorithms_are_taken(issuer: ForeignIssuer, client: Any, algorithm: str) -> None:
    assert assume(client, issuer.token(algorithm))["SubjectFromWebIdentityToken"] == SUB


@pytest.mark.parametrize("algorithm", ["PS256", "HS256"])
def test_other_algorithms_are_not(issuer: ForeignIssuer, client: Any, algorithm: str) -> None:
    code, _ = refusal(client, issuer.token(algorithm))
    assert code == "InvalidIdentityToken"


def test_a_signature_by_another_key_is_refused(
    issuer: ForeignIssuer, other: ForeignIssuer, client: Any
) -> None:
    forged = other.token(iss=issuer.url)  # the other issuer's key, our issuer's name
    assert refusal(client, forged)[0] == "InvalidIdentityToken"


@pytest.mark.parametrize(
    ("aud", "seen"),
    [
        ("custom-audience", "custom-audience"),
        (["elsewhere", "sts.amazonaws.com"], "sts.amazonaws.com"),
    ],
)
def test_audience_as_string_or_array(
    issuer: ForeignIssuer, client: Any, aud: Any, seen: str
) -> None:
    assert assume(client, issuer.token(aud=aud))["Audience"] == seen


@pytest.mark.parametrize(
    ("claims", "code", "message"),
    [
        ({"aud": ["elsewhere"]}, "InvalidIdentityToken", "Incorrect token audience"),
        ({"iss": "https://not.registered"}, "InvalidIdentityToken", "No OpenIDConnect provider"),
        ({"exp": 1_000_000}, "ExpiredTokenException", "Token expired: current date/time"),
        ({"iat": "yesterday"}, "InvalidIdentityToken", "not a valid JWT"),
        ({"sub": "scoped_principal:other/user:x"}, "AccessDenied", "Not authorized to perform"),
    ],
)
def test_what_sts_refuses(
    issuer: ForeignIssuer, client: Any, claims: dict[str, Any], code: str, message: str
) -> None:
    found = refusal(client, issuer.token(**claims))
    assert found[0] == code
    assert message in found[1]


def test_five_minutes_of_clock_skew_past_exp_as_the_tester_allows(
    issuer: ForeignIssuer, client: Any
) -> None:
    now = int(datetime.now(UTC).timestamp())
    late = issuer.token(iat=now - 900, exp=now - 240)  # expired 4 minutes ago
    assert assume(client, late)["SubjectFromWebIdentityToken"] == SUB
    too_late = issuer.token(iat=now - 900, exp=now - 360)  # 6 minutes ago
    assert refusal(client, too_late)[0] == "ExpiredTokenException"


def test_trust_names_the_provider_and_the_sub_pattern(
    issuer: ForeignIssuer, other: ForeignIssuer, client: Any
) -> None:
    assert assume(client, issuer.token(), PICKY_ROLE_ARN)["AssumedRoleUser"]["Arn"].endswith(
        ":assumed-role/picky/stand-in"
    )
    assert refusal(client, other.token(), PICKY_ROLE_ARN)[0] == "AccessDenied"
    assert refusal(client, issuer.token(sub=SUB + "y"), PICKY_ROLE_ARN)[0] == "AccessDenied"


def test_a_roles_shorthand_stands_for_a_trust_policy() -> None:
    provider = OidcProvider("https://issuer.example.com")
    role = Role(ROLE_ARN, sub="scoped_principal:t1/*", tag_session=True)
    provider_arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/issuer.example.com"
    assert role.document([provider]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                "Condition": {"StringLike": {"issuer.example.com:sub": "scoped_principal:t1/*"}},
            }
        ],
    }
    # A `${` in the shorthand's pattern is literal text, not a policy variable.
    dollar = Role(ROLE_ARN, sub="user:${aws:username}*").document([provider])
    condition = dollar["Statement"][0]["Condition"]["StringLike"]
    assert condition == {"issuer.example.com:sub": "user:${$}{aws:username}*"}


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("scoped_principal:t1/*", "scoped_principal:t1/user:u1", True),
        ("scoped_principal:t1/*", "scoped_principal:t10/user:u1", False),
        ("user:u?", "user:u1", True),
        ("user:u?", "user:u12", False),
        ("a.b", "axb", False),
        ("*", "", True),
        ("Team", "team", False),
        ("user:${x}*", "user:${x}1", True),
    ],
)
def test_the_roles_pattern_is_iams_string_like(pattern: str, value: str, matches: bool) -> None:
    provider = OidcProvider("https://issuer.example.com")
    role = Role(ROLE_ARN, sub=pattern)
    evaluation = tester.evaluate_trust(
        role.document([provider]),
        {"iss": provider.url, "sub": value, "aud": "sts.amazonaws.com"},
        provider_arn=role.provider_arn(provider.url),
    )
    assert evaluation.allowed is matches, evaluation.explain()


def test_a_role_with_a_trust_policy_document(issuer: ForeignIssuer) -> None:
    host = issuer.url.split("://", 1)[1]
    document: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{host}:aud": "sts.amazonaws.com"},
                    "StringLike": {f"{host}:sub": "scoped_principal:platform/*"},
                },
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringLike": {f"{host}:sub": "*:mallory"}},
            },
        ],
    }
    with httpx.Client(timeout=5.0) as http:
        sts = AwsSts(
            [OidcProvider(issuer.url)],
            [Role(ROLE_ARN, trust_policy=document)],
            keys=IssuerKeys(http),
        )
        form = {"RoleArn": ROLE_ARN, "RoleSessionName": "doc", "DurationSeconds": "900"}
        granted = sts.assume_role_with_web_identity(
            {**form, "WebIdentityToken": issuer.token(sub="scoped_principal:platform/user:alice")}
        )[1]
        assert granted.subject == "scoped_principal:platform/user:alice"
        with pytest.raises(StsError) as denied:  # the explicit Deny
            sts.assume_role_with_web_identity({**form, "WebIdentityToken": issuer.token()})
        assert denied.value.code == "AccessDenied"
    with pytest.raises(ValueError, match="Effect"):  # what IAM would refuse to save
        Role(
            ROLE_ARN, trust_policy={"Statement": [{**document["Statement"][0], "Effect": "allow"}]}
        )
    with pytest.raises(ValueError, match="trust policy or"):
        Role(ROLE_ARN, sub="x", trust_policy=document)


def test_sts_protocol_errors(sts: tuple[str, AwsSts], issuer: ForeignIssuer) -> None:
    form = {"Action": "AssumeRole", "Version": "2011-06-15"}
    answer = httpx.post(sts[0], data=form, timeout=5)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/xml")
    assert "<Code>InvalidAction</Code>" in answer.text
    assert answer.text.startswith("<ErrorResponse xmlns=")
    token = issuer.token()
    form = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE_ARN}
    answer = httpx.post(sts[0], data={**form, "WebIdentityToken": token}, timeout=5)
    assert answer.status_code == 400
    assert "Value null at 'roleSessionName' failed to satisfy constraint" in answer.text
    assert token not in answer.text
    # A request in the query string (as STS also takes it) works.
    query = {**form, "RoleSessionName": "q1", "WebIdentityToken": token}
    answer = httpx.get(sts[0], params=query, timeout=5)
    assert answer.status_code == 200
    assert "<SubjectFromWebIdentityToken>" in answer.text
    assert token not in answer.text


def test_the_request_limits(issuer: ForeignIssuer, client: Any) -> None:
    token = issuer.token()
    assert refusal(client, token, DurationSeconds=3601)[0] == "ValidationError"
    policy = json.dumps({"Version": "2012-10-17", "Statement": []}) + " " * 2100
    assert refusal(client, token, Policy=policy)[0] == "ValidationError"
    arns = [{"arn": f"arn:aws:iam::{ACCOUNT}:policy/p{n}"} for n in range(11)]
    assert refusal(client, token, PolicyArns=arns)[0] == "ValidationError"
    big = json.dumps({"Version": "2012-10-17", "Statement": [], "Id": "x" * 1990})
    assert len(big) <= 2048
    assert refusal(client, token, Policy=big, PolicyArns=arns[:2])[0] == "PackedPolicyTooLarge"


def test_stand_in_command(
    issuer: ForeignIssuer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    isolate_aws(monkeypatch, tmp_path)
    import boto3

    host = issuer.url.split("://", 1)[1]
    policy = tmp_path / "trust-policy.json"
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{host}:sub": "scoped_principal:platform/user:alice"}},
    }
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    command = federation_command(
        "stand-in",
        "aws",
        "--issuer",
        issuer.url,
        "--role",
        f"{ROLE_ARN}={TEAM_PATTERN}",
        "--trust-policy",
        f"{PICKY_ROLE_ARN}={policy}",
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # once it is listening
        assert line.startswith("export AWS_ENDPOINT_URL_STS=http://127.0.0.1:"), line
        url = line.strip().split("=", 1)[1]
        client = boto3.client("sts", endpoint_url=url, region_name="us-east-1")
        answer = client.assume_role_with_web_identity(
            RoleArn=ROLE_ARN, RoleSessionName="cli", WebIdentityToken=issuer.token()
        )
        assert answer["SubjectFromWebIdentityToken"] == SUB
        alice = issuer.token(sub="scoped_principal:platform/user:alice")
        answer = client.assume_role_with_web_identity(
            RoleArn=PICKY_ROLE_ARN, RoleSessionName="cli", WebIdentityToken=alice
        )
        assert answer["AssumedRoleUser"]["Arn"].endswith(":assumed-role/picky/cli")
        with pytest.raises(ClientError, match="AccessDenied"):  # StringEquals: alice only
            client.assume_role_with_web_identity(
                RoleArn=PICKY_ROLE_ARN, RoleSessionName="cli", WebIdentityToken=issuer.token()
            )
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=15)
    assert process.returncode == 130
    assert f"aws-sts: AssumeRoleWithWebIdentity: {ROLE_ARN} as cli for sub {SUB}" in errors
    assert "Traceback" not in errors
