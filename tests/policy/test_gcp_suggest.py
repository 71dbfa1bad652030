"""gcp.suggest: the suggested configuration admits its subject and nobody next to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from federation.domain.subjects import SubjectContext, SubjectRenderer
from federation.errors import InvalidRequest
from federation.policy import gcp

NUMBER = "123456789012"
POOL = f"projects/{NUMBER}/locations/global/workloadIdentityPools/agents"
NAME = f"{POOL}/providers/federation"
ISS = "https://issuer.example.com"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def token(subject: str, **extra: Any) -> dict[str, Any]:
    return {
        "iss": ISS,
        "sub": subject,
        "aud": [f"//iam.googleapis.com/{NAME}"],
        "iat": 1795866600,
        "exp": 1795870200,
        **extra,
    }


def rendered(template: list[str], **context: str) -> str:
    values = {"principal_type": "user", "principal_uid": "u1", "run_id": "r1", **context}
    return SubjectRenderer().render(template, SubjectContext(**values))


# Subjects of every shape our templates render, each with a neighbour that must not pass:
# a sibling value, a longer value sharing the prefix, or a value faking structure.
PAIRS = [
    ("teams:t1/environment:e1", "teams:t1/environment:e2"),
    ("teams:t1/environment:e1", "teams:t10/environment:e1"),
    ("scoped_principal:t1/user:u1", "scoped_principal:t1/user:u2"),
    ("scoped_principal:t1/user:u1", "scoped_principal:t1/user:u1/environment:e1"),
    ("user:u1", "user:U1"),
    (
        rendered(["agent_name", "environment"], agent_name="x/environment:prod", environment="e"),
        "agent_name:x/environment:prod/environment:e",
    ),
    ("skill_spec:acme/repo_path_to_skill", "skill_spec:acme/repo_path_to_skill2"),
    ("email:o'brien@example.com", "email:obrien@example.com"),
    ("agent_name:back\\slash", "agent_name:back"),
    ("agent_name:ünïcödé", "agent_name:unicode"),
]


@pytest.mark.parametrize(("subject", "neighbour"), PAIRS)
def test_the_suggestion_admits_its_subject_and_refuses_the_neighbour(
    subject: str, neighbour: str
) -> None:
    suggestion = gcp.suggest(subject, provider_name=NAME, claims=token(subject))
    provider, member = suggestion["provider"], suggestion["member"]
    admitted = gcp.evaluate(provider, token(subject), member=member, now=NOW)
    assert admitted.allowed, admitted.explain()
    assert admitted.warnings == (), admitted.warnings
    refused = gcp.evaluate(provider, token(neighbour), member=member, now=NOW)
    assert not refused.allowed
    assert "rejected by the attribute condition" in refused.reason
    # Even a provider without the condition would not give the neighbour the binding.
    unconditioned = {key: value for key, value in provider.items() if key != "attributeCondition"}
    by_member = gcp.evaluate(unconditioned, token(neighbour), member=member, now=NOW)
    assert "does not name this identity" in by_member.reason


def test_the_suggestion_for_a_team_subject() -> None:
    claims = token("teams:t1/environment:e1", teams=["t1"], environment="e1", agent_name="a")
    suggestion = gcp.suggest("teams:t1/environment:e1", provider_name=NAME, claims=claims)
    assert suggestion["attributeMapping"] == {
        "google.subject": "assertion.sub",
        "google.groups": "assertion.teams",
        "attribute.environment": "assertion.environment",
    }
    assert suggestion["attributeCondition"] == "assertion.sub == 'teams:t1/environment:e1'"
    assert suggestion["member"] == (
        f"principal://iam.googleapis.com/{POOL}/subject/teams:t1/environment:e1"
    )
    assert suggestion["audience"] == f"//iam.googleapis.com/{NAME}"
    assert suggestion["provider"]["oidc"] == {"issuerUri": ISS, "allowedAudiences": []}
    group = f"principalSet://iam.googleapis.com/{POOL}/group/t1"
    assert gcp.evaluate(suggestion["provider"], claims, member=group, now=NOW).allowed


def test_without_claims_only_what_the_subject_guarantees_is_mapped() -> None:
    suggestion = gcp.suggest(
        "scoped_principal:user:u1", provider_name=f"//iam.googleapis.com/{NAME}"
    )
    assert suggestion["attributeMapping"] == {"google.subject": "assertion.sub"}
    assert suggestion["provider"]["oidc"]["issuerUri"] == "<your issuer URL>"
    scoped = gcp.suggest("scoped_principal:t1/user:u1", provider_name=NAME)
    assert scoped["attributeMapping"]["google.groups"] == "assertion.teams"


def test_a_quote_in_the_subject_cannot_open_the_condition() -> None:
    subject = "agent_name:x' || true || 'y"
    condition = gcp.suggest(subject, provider_name=NAME)["attributeCondition"]
    assert condition == "assertion.sub == 'agent_name:x\\' || true || \\'y'"


@pytest.mark.parametrize(
    ("subject", "name", "words"),
    [
        ("agent_name:" + "a" * 117, NAME, "128 bytes"),
        ("agent_name:" + "é" * 59, NAME, "129 bytes"),
        ("", NAME, "non-empty"),
        ("user:u1", NAME.replace(NUMBER, "my-project"), "project number"),
        ("user:u1", POOL, "not a provider name"),
    ],
)
def test_what_cannot_be_suggested(subject: str, name: str, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        gcp.suggest(subject, provider_name=name)


def test_a_127_byte_subject_can_be_suggested() -> None:
    subject = "agent_name:" + "a" * 116
    suggestion = gcp.suggest(subject, provider_name=NAME, claims=token(subject))
    found = gcp.evaluate(suggestion["provider"], token(subject), now=NOW)
    assert found.allowed
    assert any("near" in warning for warning in found.warnings)
