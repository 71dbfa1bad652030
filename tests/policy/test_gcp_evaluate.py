"""gcp.evaluate: every rule is a check, the first refusal is the reason, foot-guns warn."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from federation.errors import InvalidPolicy, InvalidRequest
from federation.policy import gcp
from federation.policy.result import Check, Decision, Evaluation

NUMBER = "123456789012"
POOL = f"projects/{NUMBER}/locations/global/workloadIdentityPools/agents"
NAME = f"{POOL}/providers/federation"
AUD = f"//iam.googleapis.com/{NAME}"
ISS = "https://issuer.example.com"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SUBJECT = "teams:t1/environment:e1"
MEMBER = f"principal://iam.googleapis.com/{POOL}/subject/{SUBJECT}"


def provider(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": NAME,
        "state": "ACTIVE",
        "oidc": {"issuerUri": ISS},
        "attributeMapping": {"google.subject": "assertion.sub"},
        "attributeCondition": f"assertion.sub == '{SUBJECT}'",
    }
    found.update(changes)
    return {key: value for key, value in found.items() if value is not None}


def claims(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "iss": ISS,
        "sub": SUBJECT,
        "aud": [AUD],
        "iat": 1795866600,
        "nbf": 1795866600,
        "exp": 1795870200,
        "jti": "j",
        "teams": ["t1"],
        "run_id": "r1",
        "environment": "e1",
    }
    found.update(changes)
    return {key: value for key, value in found.items() if value is not None}


def checked(evaluation: Evaluation, what: str) -> Check:
    return next(check for check in evaluation.checks if check.what == what)


def test_an_allow_lists_every_rule_with_its_values() -> None:
    mapping = {"google.subject": "assertion.sub", "google.groups": "assertion.teams"}
    found = gcp.evaluate(provider(attributeMapping=mapping), claims(), member=MEMBER, now=NOW)
    assert found.decision is Decision.ALLOW
    assert [check.what for check in found.checks] == [
        "provider state",
        "token header",
        "required claims",
        "issuer",
        "audience",
        "expiry",
        "issued at",
        "lifetime",
        "mapping google.subject",
        "mapping google.groups",
        "google.subject size",
        "mapped attributes: total size",
        "attribute condition",
        "IAM member",
    ]
    assert all(check.passed for check in found.checks)
    assert checked(found, "issuer").compared == {"iss": ISS, "issuerUri": ISS}
    assert checked(found, "mapping google.groups").compared == {
        "expression": "assertion.teams",
        "value": ["t1"],
    }
    assert checked(found, "attribute condition").compared["value"] is True
    assert checked(found, "attribute condition").compared["assertion.sub"] == SUBJECT
    assert found.warnings == ()
    json.dumps(found.to_dict())  # the CLI prints it as JSON


def test_the_reason_is_the_first_refusal_and_later_checks_still_run() -> None:
    found = gcp.evaluate(
        provider(attributeCondition="false"),
        claims(iss="https://other.example.com", aud=["sts.amazonaws.com"]),
        now=NOW,
    )
    assert found.decision is Decision.DENY
    assert found.reason.startswith("The issuer in ID Token https://other.example.com")
    failed = [check.what for check in found.checks if not check.passed]
    assert failed == ["issuer", "audience", "attribute condition"]


def test_an_audience_given_as_a_string_matches_too() -> None:
    found = gcp.evaluate(provider(), claims(aud=AUD), now=NOW)
    assert found.allowed


def test_several_audiences_are_not_promised_acceptance() -> None:
    found = gcp.evaluate(provider(), claims(aud=[AUD, "sts.amazonaws.com"]), now=NOW)
    assert not found.allowed
    assert "several audiences" in found.reason


@pytest.mark.parametrize(
    ("oidc", "words"),
    [
        ({"issuerUri": "http://issuer.example.com"}, "HTTPS endpoint"),
        ({"issuerUri": ISS, "allowedAudiences": [f"a{i}" for i in range(11)]}, "at most 10"),
        ({"issuerUri": ISS, "allowedAudiences": ["a" * 257]}, "256 characters"),
    ],
)
def test_an_invalid_oidc_block_is_refused(oidc: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidPolicy, match=words) as raised:
        gcp.evaluate(provider(oidc=oidc), claims(), now=NOW)
    assert raised.value.cloud_error == "INVALID_ARGUMENT"


def test_the_required_payload_fields() -> None:
    found = gcp.evaluate(provider(), claims(iat=None, sub=None), now=NOW)
    assert not found.allowed
    assert found.reason == (
        "The token has no iat, sub: GCP requires the payload fields iss, iat, exp, sub, aud."
    )


def test_a_time_that_is_not_a_number() -> None:
    found = gcp.evaluate(provider(), claims(exp="tomorrow"), now=NOW)
    assert not found.allowed
    assert checked(found, "exp").note == "exp must be a number of seconds since the epoch"


def test_a_provider_that_is_not_oidc() -> None:
    found = gcp.evaluate(provider(oidc=None, aws={"accountId": "1"}), claims(), now=NOW)
    assert not found.allowed
    assert "not an OIDC provider (aws)" in found.reason


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ({"attribute.team": "assertion.teams[0]"}, "must include the google.subject"),
        ({"google.subject": "assertion.sub", "google.display_name": "x"}, "not google.subject"),
        ({"google.subject": "assertion.sub", "attribute.Team": "'t'"}, "[a-z0-9_]"),
        ({"google.subject": "assertion.sub", f"attribute.{'a' * 101}": "'t'"}, "[a-z0-9_]"),
        ({"google.subject": "assertion.sub", "attribute.x": "'" + "a" * 2047 + "'"}, "2048"),
        (
            {"google.subject": "assertion.sub"} | {f"attribute.a{i}": "'v'" for i in range(51)},
            "maximum of 50",
        ),
    ],
)
def test_an_invalid_mapping_is_refused(mapping: dict[str, str], words: str) -> None:
    with pytest.raises(InvalidPolicy) as raised:
        gcp.evaluate(provider(attributeMapping=mapping), claims(), now=NOW)
    assert words in raised.value.message
    assert "INVALID_ARGUMENT" in raised.value.message


def test_fifty_custom_attributes_and_a_2048_character_expression_are_fine() -> None:
    mapping = {"google.subject": "assertion.sub"} | {f"attribute.a{i}": "'v'" for i in range(49)}
    mapping["attribute.long"] = "'" + "a" * 2046 + "'"
    assert gcp.evaluate(provider(attributeMapping=mapping), claims(), now=NOW).allowed


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ({"google.subject": "assertion.iat"}, "google.subject must be a string"),
        ({"google.subject": "''"}, "google.subject is empty"),
        ({"google.subject": "assertion.sub", "google.groups": "assertion.sub"}, "list of strings"),
        ({"google.subject": "assertion.sub", "attribute.n": "assertion.iat"}, "string or a list"),
    ],
)
def test_mapped_values_of_the_wrong_type_are_refused(mapping: dict[str, str], words: str) -> None:
    found = gcp.evaluate(provider(attributeMapping=mapping), claims(), now=NOW)
    assert not found.allowed
    assert words in found.reason


def test_a_mapping_that_is_not_cel_over_assertion_cannot_be_saved() -> None:
    mapping = {"google.subject": "assertion.sub", "attribute.x": "google.subject"}
    with pytest.raises(InvalidPolicy, match="not valid CEL over assertion"):
        gcp.evaluate(provider(attributeMapping=mapping), claims(), now=NOW)


def test_a_list_attribute_admits_a_member_naming_one_of_its_values() -> None:
    mapping = {"google.subject": "assertion.sub", "attribute.teams": "assertion.teams"}
    member = f"principalSet://iam.googleapis.com/{POOL}/attribute.teams/t2"
    found = gcp.evaluate(
        provider(attributeMapping=mapping), claims(teams=["t1", "t2"]), member=member, now=NOW
    )
    assert found.allowed


def test_a_condition_on_an_unmapped_google_attribute_is_rejected() -> None:
    found = gcp.evaluate(provider(attributeCondition="'t1' in google.groups"), claims(), now=NOW)
    assert not found.allowed
    assert "rejected by the attribute condition" in found.reason
    assert "groups" in found.reason


def test_a_condition_over_4096_characters_is_refused() -> None:
    condition = "assertion.sub == '" + "a" * 4080 + "'"
    with pytest.raises(InvalidPolicy, match="4096"):
        gcp.evaluate(provider(attributeCondition=condition), claims(), now=NOW)


def test_a_malformed_member_is_refused() -> None:
    found = gcp.evaluate(provider(), claims(), member="user:someone@example.com", now=NOW)
    assert not found.allowed
    assert "not a workload identity pool principal" in found.reason


def test_no_member_matches_when_nothing_was_mapped() -> None:
    found = gcp.evaluate(
        provider(attributeMapping={"google.subject": "assertion.email"}),
        claims(),
        member=MEMBER,
        now=NOW,
    )
    assert not found.allowed
    assert checked(found, "IAM member").note == "no identity was mapped, so no member can match"


def test_warnings_for_foreign_claims_and_project_ids() -> None:
    found = gcp.evaluate(
        provider(
            name="projects/my-project/locations/global/workloadIdentityPools/agents/providers/fed-x",
            attributeMapping={"google.subject": "assertion.repository + assertion.sub"},
        ),
        claims(aud=["//iam.googleapis.com/projects/my-project/locations/global/x"]),
        now=NOW,
    )
    assert any("assertion.repository" in warning for warning in found.warnings)
    assert sum("project number" in warning for warning in found.warnings) == 1


def test_a_condition_through_a_mapped_attribute_constrains_the_team() -> None:
    mapping = {"google.subject": "assertion.sub", "attribute.team": "assertion.teams[0]"}
    found = gcp.evaluate(
        provider(attributeMapping=mapping, attributeCondition="attribute.team == 't1'"),
        claims(),
        now=NOW,
    )
    assert found.allowed
    assert found.warnings == ()


def test_a_constant_false_condition_does_not_warn_about_constraints() -> None:
    found = gcp.evaluate(provider(attributeCondition="false"), claims(), now=NOW)
    assert "evaluates to false" in found.reason
    assert found.warnings == ()


def test_the_clock_defaults_to_now_and_must_be_aware() -> None:
    # A token from 2026 is long expired or not yet valid by the real clock; either way
    # the evaluation runs against the current time without one being given.
    assert gcp.evaluate(provider(), claims()).checks
    with pytest.raises(ValueError, match="timezone-aware"):
        gcp.evaluate(provider(), claims(), now=datetime(2026, 11, 28, 12))


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ([], "JSON object"),
        ({"oidc": {}}, "provider's name"),
        ({"name": "projects/1/locations/global/workloadIdentityPools/p"}, "provider's name"),
    ],
)
def test_a_document_that_is_no_provider(document: Any, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        gcp.evaluate(document, claims(), now=NOW)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (f"{POOL}/providers/oz", "provider ID 'oz' must be 4 to 32 characters"),
        (f"{POOL}/providers/Federation", "lowercase letters"),
        (f"{POOL}/providers/{'a' * 33}", "4 to 32"),
        (f"{POOL}/providers/gcp-oz", "Google reserves"),
        (f"{POOL.replace('/agents', '/ag')}/providers/federation", "pool ID 'ag'"),
    ],
)
def test_a_provider_gcp_would_not_create(name: str, words: str) -> None:
    with pytest.raises(InvalidPolicy, match=words) as raised:
        gcp.evaluate(provider(name=name), claims(), now=NOW)
    assert raised.value.cloud_error == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ({"alg": "RS384", "kid": "k"}, "only RS256 or ES256"),
        ({"alg": "ES512", "kid": "k"}, "only RS256 or ES256"),
        ({"alg": "ES256"}, "no kid"),
        ({"alg": "RS256", "kid": ""}, "no kid"),
    ],
)
def test_the_token_header_must_be_rs256_or_es256_with_a_kid(
    header: dict[str, Any], words: str
) -> None:
    found = gcp.evaluate(provider(), claims(), header=header, now=NOW)
    assert not found.allowed
    assert words in found.reason
    assert not checked(found, "token header").passed


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_rs256_and_es256_with_a_kid_pass(alg: str) -> None:
    found = gcp.evaluate(provider(), claims(), header={"alg": alg, "kid": "k1"}, now=NOW)
    assert found.allowed
    assert checked(found, "token header").passed


def test_without_a_header_it_is_not_checked() -> None:
    found = gcp.evaluate(provider(), claims(), now=NOW)
    assert checked(found, "token header").note == "not checked: no token header was given"


def test_claims_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest, match="claims"):
        gcp.evaluate(provider(), [], now=NOW)  # type: ignore[arg-type]
