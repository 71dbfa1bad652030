"""GCP's CEL dialect: extract(), quoting, references, JSON values, errors."""

from __future__ import annotations

import pytest

from federation.policy import gcp_cel

ARN = "arn:aws:sts::123456789012:assumed-role/my-role/my-session"


@pytest.mark.parametrize(
    ("text", "template", "expected"),
    [
        # The two templates of GCP's documented default AWS mapping.
        (ARN, "assumed-role/{role_name}/", "my-role"),
        (ARN, "{account_arn}assumed-role/", "arn:aws:sts::123456789012:"),
        ("teams:t1/environment:e1", "teams:{team}/", "t1"),
        ("teams:t1/environment:e1", "environment:{env}", "e1"),
        ("teams:t1/environment:e1", "{all}", "teams:t1/environment:e1"),
        ("teams:t1/environment:e1", "owner:{o}/", ""),
        ("teams:t1", "teams:{team}/", ""),
    ],
)
def test_extract_takes_what_the_placeholder_stands_for(
    text: str, template: str, expected: str
) -> None:
    assert gcp_cel.extract(text, template) == expected


@pytest.mark.parametrize("template", ["no placeholder", "{a}{b}", "{a", "a}"])
def test_extract_needs_exactly_one_placeholder(template: str) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        gcp_cel.extract("text", template)


def test_extract_in_an_expression_and_its_errors() -> None:
    found = gcp_cel.evaluate(
        "assertion.arn.extract('assumed-role/{role_name}/')",
        {"assertion": {"arn": ARN}},
        roots=gcp_cel.MAPPING_ROOTS,
    )
    assert found == gcp_cel.Result(value="my-role")
    broken = gcp_cel.evaluate("assertion.arn.extract('none')", {"assertion": {"arn": ARN}})
    assert not broken.ok
    assert "exactly one" in (broken.error or "")


@pytest.mark.parametrize(
    "text",
    [
        "teams:t1/environment:e1",
        "it's",
        "back\\slash",
        "\\'",
        "'; true || '",
        'double "quotes"',
        "line\nbreak\ttab\r",
        "ünïcödé ✓ 😀",
        "\u2028\u0085",
        "",
        "a%3Ab",
    ],
)
def test_quote_round_trips_through_cel(text: str) -> None:
    literal = gcp_cel.quote(text)
    assert gcp_cel.evaluate(literal, {}) == gcp_cel.Result(value=text)
    equal = gcp_cel.evaluate(f"assertion.sub == {literal}", {"assertion": {"sub": text}})
    assert equal.value is True


def test_a_quoted_injection_stays_a_string() -> None:
    literal = gcp_cel.quote("x' || true || '")
    found = gcp_cel.evaluate(f"assertion.sub == {literal}", {"assertion": {"sub": "y"}})
    assert found.value is False


def test_references_read_selections_not_literals() -> None:
    expression = (
        "assertion.sub == 'assertion.teams' && 't1' in assertion['teams'] "
        '&& google.subject.startsWith("google.groups") && attribute.env == r"attribute.x"'
    )
    assert gcp_cel.references(expression) == {
        ("assertion", "sub"),
        ("assertion", "teams"),
        ("google", "subject"),
        ("attribute", "env"),
    }


def test_json_numbers_are_doubles_and_compare_with_ints() -> None:
    claims = {"exp": 1795870200, "ok": True, "n": None}
    assert gcp_cel.evaluate("assertion.exp", {"assertion": claims}).value == 1795870200.0
    assert gcp_cel.evaluate("type(assertion.exp) == double", {"assertion": claims}).value is True
    assert gcp_cel.evaluate("assertion.exp > 1795870199", {"assertion": claims}).value is True
    assert gcp_cel.evaluate("assertion.ok", {"assertion": claims}).value is True
    assert gcp_cel.evaluate("assertion.n == null", {"assertion": claims}).value is True


def test_an_absent_claim_is_an_error_and_has_tests_for_it() -> None:
    missing = gcp_cel.evaluate("assertion.email", {"assertion": {"sub": "s"}})
    assert not missing.ok
    assert "email" in (missing.error or "")
    guarded = gcp_cel.evaluate(
        "has(assertion.email) ? assertion.email : assertion.sub", {"assertion": {"sub": "s"}}
    )
    assert guarded.value == "s"


def test_the_strings_extension_is_there() -> None:
    claims = {"assertion": {"sub": "Teams:T1/environment:e1"}}
    assert gcp_cel.evaluate("assertion.sub.split('/')", claims).value == [
        "Teams:T1",
        "environment:e1",
    ]
    assert gcp_cel.evaluate("assertion.sub.lowerAscii()", claims).value == (
        "teams:t1/environment:e1"
    )


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("assertion.sub ==", "Syntax error"),
        ("nosuch(assertion.sub)", "undeclared reference to 'nosuch'"),
        ("assertion.sub + 1 == 'x'", "no matching overload"),
    ],
)
def test_an_expression_that_does_not_check_says_why(expression: str, words: str) -> None:
    with pytest.raises(gcp_cel.CelSyntaxError, match=words):
        gcp_cel.check(expression)


def test_a_mapping_sees_only_the_assertion() -> None:
    gcp_cel.check("google.subject == 'x'")
    with pytest.raises(gcp_cel.CelSyntaxError, match=r"google\.subject"):
        gcp_cel.check("google.subject", roots=gcp_cel.MAPPING_ROOTS)


def test_a_nul_character_gives_no_answer_rather_than_a_wrong_one() -> None:
    found = gcp_cel.evaluate("assertion.sub == 'a'", {"assertion": {"sub": "a\x00b"}})
    assert not found.ok
    assert "NUL" in (found.error or "")


@pytest.mark.parametrize(
    ("value", "name"),
    [(None, "null"), (True, "bool"), (1, "int"), (1.5, "double"), ("s", "string")],
)
def test_type_names(value: object, name: str) -> None:
    assert gcp_cel.type_name(value) == name
