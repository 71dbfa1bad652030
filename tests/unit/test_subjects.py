"""Subject templates: rendering of each component, joining, hostile values, limits."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import unquote

import pytest

from federation.domain.subjects import (
    COMPONENTS,
    SubjectContext,
    SubjectRenderer,
    check_length,
    check_separator,
    encode_value,
    parse_template,
)
from federation.errors import InvalidRequest

FULL = SubjectContext(
    principal_type="user",
    principal_uid="u1",
    run_id="r1",
    email="ada@example.com",
    team="t1",
    environment="e1",
    agent_name="nightly",
    skill_spec="warpdotdev/repo_path_to_skill",
    host="warp",
)
BARE = SubjectContext(principal_type="service_account", principal_uid="sa1", run_id="r9")


def render(template: list[str], context: SubjectContext = FULL, separator: str = "/") -> str:
    return SubjectRenderer(separator).render(parse_template(template), context)


@pytest.mark.parametrize(
    ("component", "rendered"),
    [
        ("principal", "user:u1"),
        ("scoped_principal", "scoped_principal:t1/user:u1"),
        ("email", "email:ada@example.com"),
        ("teams", "teams:t1"),
        ("environment", "environment:e1"),
        ("agent_name", "agent_name:nightly"),
        ("skill_spec", "skill_spec:warpdotdev/repo_path_to_skill"),
        ("run_id", "run_id:r1"),
        ("host", "host:warp"),
    ],
)
def test_each_component_renders_as_designed(component: str, rendered: str) -> None:
    assert render([component]) == rendered


def test_every_component_is_covered() -> None:
    assert set(COMPONENTS) == {
        "principal",
        "scoped_principal",
        "email",
        "teams",
        "environment",
        "agent_name",
        "skill_spec",
        "run_id",
        "host",
    }


def test_service_account_principal() -> None:
    assert render(["principal"], BARE) == "service_account:sa1"
    assert render(["run_id"], BARE) == "run_id:r9"


def test_scoped_principal_without_a_team() -> None:
    assert render(["scoped_principal"], BARE) == "scoped_principal:service_account:sa1"


def test_scoped_principal_with_an_empty_team_is_no_empty_value() -> None:
    # A component is never rendered with an empty value (docs/concepts.md).
    context = replace(FULL, team="")
    try:
        rendered = render(["scoped_principal"], context)
    except InvalidRequest:
        return
    assert rendered == "scoped_principal:user:u1"


def test_host_is_the_worker_id_when_self_hosted() -> None:
    assert render(["host"], replace(FULL, host="worker-7")) == "host:worker-7"


def test_components_join_in_template_order() -> None:
    assert render(["teams", "environment"]) == "teams:t1/environment:e1"
    assert render(["environment", "teams"]) == "environment:e1/teams:t1"
    assert render(["run_id", "principal", "host"]) == "run_id:r1/user:u1/host:warp"


def test_other_separator_joins_components() -> None:
    assert render(["teams", "environment"], separator="|") == "teams:t1|environment:e1"


def test_default_template_is_principal() -> None:
    assert parse_template(None) == ("principal",)
    assert SubjectRenderer().render(parse_template(None), FULL) == "user:u1"


def test_single_string_is_one_component() -> None:
    assert parse_template("teams") == ("teams",)


# ---- hostile values -------------------------------------------------------------------


def test_value_cannot_fake_a_component() -> None:
    context = replace(FULL, agent_name="x/environment:prod")
    assert render(["agent_name"], context) == "agent_name:x/environment%3Aprod"


def test_colon_in_skill_spec_is_encoded_and_slash_kept() -> None:
    context = replace(FULL, skill_spec="acme/repo:deploy")
    assert render(["skill_spec"], context) == "skill_spec:acme/repo%3Adeploy"


def test_percent_is_encoded_first_so_encodings_cannot_be_smuggled() -> None:
    context = replace(FULL, environment="prod%3Aevil")
    assert render(["environment"], context) == "environment:prod%253Aevil"
    assert encode_value("100%") == "100%25"


def test_other_separator_is_encoded_inside_values() -> None:
    context = replace(FULL, agent_name="a|teams:t2", skill_spec="acme/repo")
    assert render(["agent_name", "skill_spec"], context, separator="|") == (
        "agent_name:a%7Cteams%3At2|skill_spec:acme/repo"
    )


def test_default_separator_keeps_slash_readable() -> None:
    assert encode_value("a/b/c") == "a/b/c"
    assert encode_value("a/b", "|") == "a/b"
    assert encode_value("a.b", ".") == "a%2Eb"


def test_principal_uid_and_team_values_are_encoded_too() -> None:
    context = replace(FULL, principal_uid="u1/teams:t2", team="t1:x")
    assert render(["principal"], context) == "user:u1/teams%3At2"
    assert render(["scoped_principal"], context) == "scoped_principal:t1%3Ax/user:u1/teams%3At2"


ADVERSARIAL = [
    "x/environment:prod",
    "/teams:t2",
    "teams:t2",
    "a/run_id:r2/host:evil",
    ":",
    "::",
    "%3A",
    "%253A",
    "%",
    "%%3A%",
    "/",
    "//",
    "a/b:c/d:e",
    "prod/",
    "x/skill_spec:acme/repo:deploy",
    "x|environment:prod",
    "x/user:u2",
    "x/service_account:sa2",
    "x/scoped_principal:t9/user:u9",
    "x/email:evil@example.com",
    "ümlaut/ñ:é",
    "\u2215environment:prod",  # division slash
    "x%2Fenvironment%3Aprod",
]
# A boundary is the separator followed by a name and a colon; `principal` renders as its
# type, so `user:` and `service_account:` count as names too.
NAMES = (*COMPONENTS, "user", "service_account")


def boundaries(separator: str) -> re.Pattern[str]:
    names = "|".join(sorted(NAMES, key=len, reverse=True))
    return re.compile(rf"{re.escape(separator)}(?=(?:{names}):)")


def hostile_context(value: str) -> SubjectContext:
    return SubjectContext(
        principal_type="user",
        principal_uid=value,
        run_id=value,
        email=value,
        team=value,
        environment=value,
        agent_name=value,
        skill_spec=value,
        host=value,
    )


TEMPLATES = [
    ["environment"],
    ["teams", "environment"],
    ["agent_name", "skill_spec", "host"],
    ["principal", "run_id", "email"],
    ["skill_spec", "environment", "teams", "agent_name", "run_id", "host", "email"],
]


@pytest.mark.parametrize("separator", ["/", "|", "#"])
@pytest.mark.parametrize("value", ADVERSARIAL)
def test_no_value_adds_a_component(value: str, separator: str) -> None:
    context = hostile_context(value)
    for template in TEMPLATES:
        subject = render(template, context, separator)
        pieces = boundaries(separator).split(subject)
        assert len(pieces) == len(template), (template, subject)
        for name, piece in zip(template, pieces, strict=True):
            prefix = "user:" if name == "principal" else f"{name}:"
            assert piece.startswith(prefix)
            # The value decodes back to exactly what the run holds.
            assert unquote(piece.removeprefix(prefix)) == value


@pytest.mark.parametrize("value", ADVERSARIAL)
def test_scoped_principal_boundaries_stay_fixed(value: str) -> None:
    subject = render(["scoped_principal", "environment"], hostile_context(value))
    pieces = boundaries("/").split(subject)
    # scoped_principal:<team>/user:<uid> holds one inner `/user:`, and nothing more.
    assert len(pieces) == 3, subject
    assert pieces[0].startswith("scoped_principal:")
    assert pieces[1].startswith("user:")
    assert pieces[2].startswith("environment:")


# ---- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "component", ["email", "teams", "environment", "agent_name", "skill_spec", "host"]
)
def test_missing_value_is_refused_naming_the_component(component: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        render(["principal", component], BARE)
    assert raised.value.detail is not None
    assert repr(component) in raised.value.detail


@pytest.mark.parametrize("component", ["environment", "agent_name", "host", "email"])
def test_empty_value_is_refused_like_a_missing_one(component: str) -> None:
    with pytest.raises(InvalidRequest, match=component):
        render([component], replace(FULL, **{component: ""}))


def test_unknown_component_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_template(["teams", "repository"])
    detail = raised.value.detail
    assert detail is not None
    assert "'repository'" in detail
    for name in COMPONENTS:
        assert name in detail


def test_unknown_component_name_is_truncated_in_the_message() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_template(["z" * 5000])
    assert raised.value.detail is not None
    assert len(raised.value.detail) < 500


def test_duplicate_component_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="more than once"):
        parse_template(["teams", "environment", "teams"])


@pytest.mark.parametrize("empty", [[], ()])
def test_empty_template_is_refused(empty: list[str] | tuple[str, ...]) -> None:
    with pytest.raises(InvalidRequest, match="at least one"):
        parse_template(empty)


# ---- length ---------------------------------------------------------------------------

GCP_AUDIENCES = [
    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/o",
    "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/o",
]


@pytest.mark.parametrize("audience", GCP_AUDIENCES)
def test_gcp_audience_allows_127_bytes(audience: str) -> None:
    check_length("a" * 127, audience)
    # 63 two-byte characters and one ASCII: 127 bytes in 64 characters.
    check_length("é" * 63 + "a", audience)


@pytest.mark.parametrize("audience", GCP_AUDIENCES)
def test_gcp_audience_refuses_128_bytes_counted_in_utf8(audience: str) -> None:
    with pytest.raises(InvalidRequest, match="127"):
        check_length("a" * 128, audience)
    # 64 characters, but 128 bytes.
    with pytest.raises(InvalidRequest, match="128 bytes"):
        check_length("é" * 64, audience)
    # 32 characters of 4 bytes each.
    with pytest.raises(InvalidRequest):
        check_length("\U0001f600" * 32, audience)


@pytest.mark.parametrize("audience", ["sts.amazonaws.com", "api://AzureADTokenExchange"])
def test_other_audiences_allow_255_bytes(audience: str) -> None:
    check_length("a" * 255, audience)
    check_length("a" * 128, audience)
    check_length("€" * 85, audience)  # 255 bytes


@pytest.mark.parametrize("audience", ["sts.amazonaws.com", *GCP_AUDIENCES])
def test_every_audience_refuses_256_bytes(audience: str) -> None:
    with pytest.raises(InvalidRequest):
        check_length("a" * 256, audience)
    with pytest.raises(InvalidRequest):
        check_length("€" * 86, audience)  # 86 characters, 258 bytes


def test_audience_that_only_mentions_gcp_is_not_gcp() -> None:
    check_length("a" * 200, "https://example.com//iam.googleapis.com/")


# ---- separator ------------------------------------------------------------------------


@pytest.mark.parametrize("separator", ["/", ":", "|", ";", ",", "~", "!", "^", "=", "#"])
def test_separator_accepts_its_choices(separator: str) -> None:
    assert check_separator(separator) == separator
    assert SubjectRenderer(separator).separator == separator


@pytest.mark.parametrize(
    "separator",
    ["%", "*", "?", '"', "\\", "", "//", "a", "1", " ", "\n", "_", ".", "-", "@", "+"],
)
def test_separator_refuses_others(separator: str) -> None:
    with pytest.raises(ValueError, match="separator"):
        check_separator(separator)
    with pytest.raises(ValueError, match="separator"):
        SubjectRenderer(separator)
