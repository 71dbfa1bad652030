"""GCP names: provider resource names, default audiences, principal identifiers."""

from __future__ import annotations

import pytest

from federation.policy.gcp_names import Member, MemberKind, ProviderName

NAME = "projects/123456789012/locations/global/workloadIdentityPools/agents/providers/fed"
POOL = "projects/123456789012/locations/global/workloadIdentityPools/agents"


@pytest.mark.parametrize(
    "text", [NAME, f"//iam.googleapis.com/{NAME}", f"https://iam.googleapis.com/{NAME}"]
)
def test_a_provider_name_with_or_without_its_prefix(text: str) -> None:
    name = ProviderName.parse(text)
    assert (name.project, name.location, name.pool, name.provider) == (
        "123456789012",
        "global",
        "agents",
        "fed",
    )
    assert name.resource == NAME
    assert name.pool_path == POOL
    assert name.default_audiences == (
        f"//iam.googleapis.com/{NAME}",
        f"https://iam.googleapis.com/{NAME}",
    )


@pytest.mark.parametrize("text", [None, "", POOL, f"{NAME}/extra", "providers/fed"])
def test_what_is_not_a_provider_name(text: object) -> None:
    with pytest.raises(ValueError, match="provider name"):
        ProviderName.parse(text)


def test_the_subject_member_keeps_slashes_and_encoding() -> None:
    name = ProviderName.parse(NAME)
    assert name.subject_member("agent_name:x/environment%3Aprod") == (
        f"principal://iam.googleapis.com/{POOL}/subject/agent_name:x/environment%3Aprod"
    )


@pytest.mark.parametrize(
    ("text", "kind", "attribute", "value"),
    [
        (
            f"principal://iam.googleapis.com/{POOL}/subject/teams:t1/environment:e1",
            MemberKind.SUBJECT,
            "",
            "teams:t1/environment:e1",
        ),
        (f"principalSet://iam.googleapis.com/{POOL}/group/t1", MemberKind.GROUP, "", "t1"),
        (
            f"principalSet://iam.googleapis.com/{POOL}/attribute.team_env/t1-e1",
            MemberKind.ATTRIBUTE,
            "team_env",
            "t1-e1",
        ),
        (f"principalSet://iam.googleapis.com/{POOL}/*", MemberKind.ALL, "", ""),
    ],
)
def test_each_member_form(text: str, kind: MemberKind, attribute: str, value: str) -> None:
    member = Member.parse(text)
    assert (member.kind, member.name, member.value) == (kind, attribute, value)
    assert member.pool_path == POOL
    assert member.describe()


@pytest.mark.parametrize(
    "text",
    [
        f"principal://iam.googleapis.com/{POOL}/group/t1",  # a group is a principalSet
        f"principalSet://iam.googleapis.com/{POOL}/subject/s",  # a subject is a principal
        f"principal://iam.googleapis.com/{POOL}/*",
        f"principalSet://iam.googleapis.com/{POOL}/attribute.Team/t1",  # [a-z0-9_] only
        f"principalSet://iam.googleapis.com/{POOL}/attribute.team/",
        f"principal://iam.googleapis.com/{POOL}/subject/",
        "serviceAccount:sa@p.iam.gserviceaccount.com",
        f"principal://iam.example.com/{POOL}/subject/s",
        "principal://iam.googleapis.com/locations/global/workforcePools/p/subject/s",
    ],
)
def test_what_is_not_a_workload_pool_member(text: str) -> None:
    with pytest.raises(ValueError, match="not a workload identity pool principal"):
        Member.parse(text)
