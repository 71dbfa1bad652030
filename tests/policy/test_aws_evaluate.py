"""``aws.evaluate`` beyond the corpus: what it reports, and the inputs it refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from federation.domain.tokens import AWS_TAGS_CLAIM
from federation.errors import InvalidPolicy, InvalidRequest
from federation.policy import aws
from federation.policy.aws_context import SOURCE_IDENTITY_CLAIM

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
HOST = "issuer.example.com"
PROVIDER = f"arn:aws:iam::111122223333:oidc-provider/{HOST}"
SUB = "scoped_principal:t1/user:u1"
ARWWI = "sts:AssumeRoleWithWebIdentity"


def claims(**changes: Any) -> dict[str, Any]:
    issued = int(NOW.timestamp()) - 60
    found: dict[str, Any] = {
        "iss": f"https://{HOST}",
        "sub": SUB,
        "aud": ["sts.amazonaws.com"],
        "iat": issued,
        "exp": issued + 300,
    }
    found.update(changes)
    return {key: value for key, value in found.items() if value is not None}


def statement(action: Any = ARWWI, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER},
        "Action": action,
        "Condition": {
            "StringEquals": {f"{HOST}:aud": "sts.amazonaws.com"},
            "StringLike": {f"{HOST}:sub": "scoped_principal:t1/*"},
        },
    }
    found.update(extra)
    return found


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements or [statement()])}


def run(document: dict[str, Any], token: dict[str, Any], **kwargs: Any) -> Any:
    kwargs.setdefault("provider_arn", PROVIDER)
    kwargs.setdefault("now", NOW)
    return aws.evaluate(document, token, **kwargs)


def test_checks_list_every_statement_and_condition_with_the_values_compared() -> None:
    document = policy(
        statement(),
        statement(Effect="Deny", Condition={"StringEquals": {f"{HOST}:sub": "user:u9"}}),
    )

    found = run(document, claims())

    assert found.allowed
    what = [check.what for check in found.checks]
    assert "statement 1: Principal.Federated" in what
    assert "statement 1: Action" in what
    assert f"statement 1: StringLike {HOST}:sub" in what
    assert f"statement 2: StringEquals {HOST}:sub" in what
    compared = next(c for c in found.checks if c.what == f"statement 2: StringEquals {HOST}:sub")
    assert not compared.passed
    assert compared.compared == {"key": f"{HOST}:sub", "token": [SUB], "policy": ["user:u9"]}
    context = next(c for c in found.checks if c.what == "token: request context")
    assert context.compared["keys"][f"{HOST}:sub"] == [SUB]
    json.dumps(found.to_dict())


def test_the_reason_is_one_sentence_naming_the_refusal() -> None:
    found = run(policy(), claims(sub="scoped_principal:t2/user:u1"))

    assert not found.allowed
    assert "\n" not in found.reason
    assert found.reason.startswith(f"no statement allows {ARWWI}: statement 1 fails StringLike")
    assert "'scoped_principal:t2/user:u1'" in found.reason


def test_checks_continue_after_a_token_refusal() -> None:
    found = run(policy(), claims(aud=["other"], exp=int(NOW.timestamp()) - 301))

    assert found.reason.startswith("Incorrect token audience")
    failed = [check.what for check in found.checks if not check.passed]
    assert "token: exp + 5 min clock skew after now" in failed
    assert any(check.what == "statement 1: Action" for check in found.checks)


def test_a_token_without_iss_is_still_evaluated_against_a_known_provider() -> None:
    found = run(policy(), claims(iss=None))

    assert "no iss claim" in found.reason
    assert any(check.what.startswith("statement 1") for check in found.checks)


def test_a_token_without_iss_and_no_provider_stops_early() -> None:
    found = run(policy(), claims(iss=None), provider_arn=None)

    assert not found.allowed
    assert "no iss claim" in found.reason


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"Statement": []}, "no Statement"),
        (policy(statement(Resource="*")), "Resource"),
        (policy(statement(Effect="allow")), "Effect"),
        (policy(statement(NotAction="sts:TagSession")), "exactly one of Action and NotAction"),
        (policy({"Effect": "Allow", "Action": ARWWI}), "no Principal"),
        (policy(statement(Condition={"Null": {f"{HOST}:azp": "maybe"}})), "Null takes"),
        (policy(statement(Condition={"StringEquals": {f"{HOST}:sub": {"a": 1}}})), "value"),
        (policy(statement(Condition={"ForAnyValue:NullIfExists": {"k": "true"}})), "unknown"),
        (policy(statement(NotPrincipal={"AWS": "*"})), "NotPrincipal"),
        (policy(statement(Condition={"stringequals": {f"{HOST}:sub": "x"}})), "'stringequals'"),
        ({**policy(statement()), "Version": "2012-10-18"}, "Version '2012-10-18'"),
    ],
)
def test_documents_iam_would_refuse(document: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidPolicy) as raised:
        run(document, claims())

    assert raised.value.cloud_error == "MalformedPolicyDocument"
    assert raised.value.exit_status == 2
    assert raised.value.message.startswith(
        "The cloud would refuse to save this policy. (MalformedPolicyDocument: "
    )
    assert words in raised.value.message
    assert "\n" not in raised.value.message


@pytest.mark.parametrize("version", ["2012-10-17", "2008-10-17", None])
def test_both_policy_versions_and_none_are_valid(version: str | None) -> None:
    document = policy(statement())
    if version is None:
        del document["Version"]
    else:
        document["Version"] = version
    assert run(document, claims()).allowed


def test_a_bad_provider_arn_is_the_callers_error() -> None:
    with pytest.raises(InvalidRequest, match="OIDC provider ARN"):
        run(policy(), claims(), provider_arn="arn:aws:iam::111122223333:role/oz")


def test_a_source_identity_needs_set_source_identity() -> None:
    token = claims(**{SOURCE_IDENTITY_CLAIM: "ada"})

    refused = run(policy(), token)
    allowed = run(policy(statement([ARWWI, "sts:SetSourceIdentity"])), token)

    assert not refused.allowed
    assert "no statement allows sts:SetSourceIdentity" in refused.reason
    assert allowed.allowed, allowed.explain()


def test_sts_source_identity_is_a_condition_key() -> None:
    document = policy(
        statement(
            [ARWWI, "sts:SetSourceIdentity"],
            Condition={
                "StringEquals": {f"{HOST}:aud": "sts.amazonaws.com", f"{HOST}:sub": SUB},
                "StringLike": {"sts:SourceIdentity": "ad*"},
            },
        )
    )
    assert run(document, claims(**{SOURCE_IDENTITY_CLAIM: "ada"})).allowed
    assert not run(document, claims(**{SOURCE_IDENTITY_CLAIM: "bob"})).allowed


def test_a_multivalued_session_tag_is_refused() -> None:
    token = claims(**{AWS_TAGS_CLAIM: {"principal_tags": {"team": ["t1", "t2"]}}})

    found = run(policy(statement([ARWWI, "sts:TagSession"])), token)

    assert not found.allowed
    assert "exactly one string value" in found.reason


def test_transitive_tag_keys_are_a_condition_key() -> None:
    tags = {"principal_tags": {"team": ["t1"]}, "transitive_tag_keys": ["team"]}
    document = policy(
        statement([ARWWI, "sts:TagSession"]),
        statement(
            "sts:TagSession",
            Effect="Deny",
            Condition={"ForAnyValue:StringEquals": {"sts:TransitiveTagKeys": "team"}},
        ),
    )

    found = run(document, claims(**{AWS_TAGS_CLAIM: tags}))

    assert not found.allowed
    assert "sts:TagSession is explicitly denied by statement 2" in found.reason


def test_an_explicit_deny_of_tag_session_gives_no_missing_action_warning() -> None:
    document = policy(
        statement([ARWWI, "sts:TagSession"]),
        statement("sts:TagSession", Effect="Deny", Condition={}),
    )
    found = run(document, claims(**{AWS_TAGS_CLAIM: {"principal_tags": {"team": ["t1"]}}}))

    assert not found.allowed
    assert not any("must also allow sts:TagSession" in warning for warning in found.warnings)


def test_now_defaults_to_the_current_time_and_naive_times_are_utc() -> None:
    fresh = claims(iat=int(datetime.now(UTC).timestamp()), exp=4102444800)

    assert aws.evaluate(policy(), fresh, provider_arn=PROVIDER).allowed
    naive = NOW.replace(tzinfo=None)
    assert run(policy(), claims(), now=naive).allowed


def test_a_token_without_exp_or_iat() -> None:
    assert "no numeric exp" in run(policy(), claims(exp=None)).reason
    found = run(policy(), claims(iat=None))
    assert found.allowed
    assert any("iat" in warning for warning in found.warnings)


def test_client_ids_none_skips_the_audience_check_and_a_string_is_one_id() -> None:
    token = claims(aud="oz-aws")
    document = policy(
        statement(Condition={"StringEquals": {f"{HOST}:aud": "oz-aws", f"{HOST}:sub": SUB}})
    )

    assert run(document, token, client_ids=None).allowed
    assert run(document, token, client_ids="oz-aws").allowed
    assert not run(document, token, client_ids="oz-aws-2").allowed


def test_several_audiences_pass_when_one_is_a_client_id() -> None:
    # AWS does not document array audiences; the tester takes each value as a key value.
    found = run(policy(), claims(aud=["https://example.com", "sts.amazonaws.com"]))

    assert found.allowed, found.explain()


def test_without_a_provider_arn_an_http_issuer_is_evaluated_with_a_warning() -> None:
    token = claims(iss="http://127.0.0.1:8080")
    provider = "arn:aws:iam::111122223333:oidc-provider/127.0.0.1:8080"
    document = policy(
        statement(
            Principal={"Federated": provider},
            Condition={"StringEquals": {"127.0.0.1:8080:aud": "sts.amazonaws.com"}},
        )
    )

    found = run(document, token, provider_arn=None)

    assert found.allowed, found.explain()
    assert any("not https://" in warning for warning in found.warnings)


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}])
def test_principal_everyone_matches_with_a_warning(principal: Any) -> None:
    found = run(policy(statement(Principal=principal)), claims())

    assert found.allowed
    assert any("trusts everyone" in warning for warning in found.warnings)


def test_keys_the_tester_cannot_see_are_absent_with_a_warning() -> None:
    document = policy(
        statement(),
        statement(Effect="Deny", Condition={"Bool": {"aws:SecureTransport": "false"}}),
    )

    found = run(document, claims())

    assert found.allowed
    assert any("aws:SecureTransport depends on the request" in w for w in found.warnings)


def test_a_key_written_with_https_is_flagged() -> None:
    document = policy(
        statement(Condition={"StringEquals": {f"https://{HOST}:aud": "sts.amazonaws.com"}})
    )

    found = run(document, claims())

    assert not found.allowed
    assert any("without https://" in warning for warning in found.warnings)


def test_for_all_values_in_a_deny_is_not_flagged() -> None:
    document = policy(
        statement(),
        statement(
            Effect="Deny", Condition={"ForAllValues:StringNotLike": {"aws:TagKeys": "team*"}}
        ),
    )

    found = run(document, claims())

    assert not found.allowed
    assert not any("ForAllValues" in warning for warning in found.warnings)


def test_a_principal_arn_with_a_url_is_flagged() -> None:
    wrong = f"arn:aws:iam::111122223333:oidc-provider/https://{HOST}"
    found = run(policy(statement(Principal={"Federated": wrong})), claims())

    assert not found.allowed
    assert "the policy names" in found.reason
    assert any("URL scheme" in warning for warning in found.warnings)
