"""``aws.suggest``: the narrowest trust policy, checked by the evaluator itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from federation.domain.tokens import AWS_TAGS_CLAIM
from federation.errors import InvalidRequest
from federation.policy import aws

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
PROVIDER = "arn:aws:iam::111122223333:oidc-provider/issuer.example.com"


def claims(sub: str, **extra: Any) -> dict[str, Any]:
    issued = int(NOW.timestamp()) - 60
    found = {
        "iss": "https://issuer.example.com",
        "sub": sub,
        "aud": ["sts.amazonaws.com"],
        "iat": issued,
        "exp": issued + 300,
    }
    found.update(extra)
    return found


@pytest.mark.parametrize(
    ("subject", "neighbour"),
    [
        ("scoped_principal:t1/user:u1", "scoped_principal:t1/user:u2"),
        ("teams:t1/environment:e1", "teams:t1/environment:e10"),
        ("agent_name:x/environment%3Aprod", "agent_name:x/environment:prod"),
        ("agent_name:build*", "agent_name:build-2"),
        ("agent_name:a?b", "agent_name:axb"),
        ("agent_name:cost-${team}", "agent_name:cost-t1"),
        ("user:a.b+c(d)[e]$f", "user:aXb+c(d)[e]$f"),
    ],
)
def test_the_suggestion_admits_its_subject_and_no_neighbour(subject: str, neighbour: str) -> None:
    policy = aws.suggest(subject, provider_arn=PROVIDER)

    allowed = aws.evaluate(policy, claims(subject), provider_arn=PROVIDER, now=NOW)
    refused = aws.evaluate(policy, claims(neighbour), provider_arn=PROVIDER, now=NOW)

    assert allowed.allowed, allowed.explain()
    assert allowed.warnings == (), allowed.warnings
    assert not refused.allowed, refused.explain()
    assert "fails StringEquals issuer.example.com:sub" in refused.reason


def test_the_suggestion_is_a_complete_document() -> None:
    policy = aws.suggest("teams:t1/environment:e1", provider_arn=PROVIDER)

    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        "issuer.example.com:aud": "sts.amazonaws.com",
                        "issuer.example.com:sub": "teams:t1/environment:e1",
                    }
                },
            }
        ],
    }


def test_session_tags_add_tag_session_and_the_tagged_token_is_allowed() -> None:
    subject = "scoped_principal:t1/user:u1"
    tagged = claims(subject, **{AWS_TAGS_CLAIM: {"principal_tags": {"team": ["t1"]}}})

    plain = aws.suggest(subject, provider_arn=PROVIDER)
    with_tags = aws.suggest(subject, provider_arn=PROVIDER, session_tags=True)

    assert with_tags["Statement"][0]["Action"] == [
        "sts:AssumeRoleWithWebIdentity",
        "sts:TagSession",
    ]
    assert aws.evaluate(with_tags, tagged, provider_arn=PROVIDER, now=NOW).allowed
    refused = aws.evaluate(plain, tagged, provider_arn=PROVIDER, now=NOW)
    assert not refused.allowed
    assert "sts:TagSession" in refused.reason


def test_a_provider_with_a_path_and_a_custom_audience() -> None:
    provider = "arn:aws:iam::111122223333:oidc-provider/issuer.example.com/tenant-a"
    policy = aws.suggest("user:u1", provider_arn=provider, audience="oz-aws")
    token = claims("user:u1", iss="https://issuer.example.com/tenant-a", aud="oz-aws")

    condition = policy["Statement"][0]["Condition"]["StringEquals"]
    assert condition == {
        "issuer.example.com/tenant-a:aud": "oz-aws",
        "issuer.example.com/tenant-a:sub": "user:u1",
    }
    found = aws.evaluate(policy, token, provider_arn=provider, client_ids=["oz-aws"], now=NOW)
    assert found.allowed, found.explain()
    other = aws.evaluate(
        policy, token | {"aud": "sts.amazonaws.com"}, provider_arn=provider, now=NOW
    )
    assert not other.allowed


@pytest.mark.parametrize(
    "provider_arn",
    ["issuer.example.com", "arn:aws:iam::111122223333:role/oz", "arn:aws:iam::1:oidc-provider/x"],
)
def test_a_provider_arn_is_required(provider_arn: str) -> None:
    with pytest.raises(InvalidRequest, match="OIDC provider ARN"):
        aws.suggest("user:u1", provider_arn=provider_arn)


def test_an_empty_subject_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="subject"):
        aws.suggest("", provider_arn=PROVIDER)
