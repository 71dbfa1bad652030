"""IAM condition operators and policy values, below the level of a whole policy."""

from __future__ import annotations

import pytest

from federation.policy.aws_conditions import (
    Chunk,
    Operator,
    evaluate,
    glob_matches,
    instant,
    parse_operator,
    resolve,
)


def op(name: str) -> Operator:
    found = parse_operator(name)
    assert found is not None, name
    return found


def values(*texts: str) -> list[tuple[Chunk, ...] | None]:
    return [(Chunk(text),) for text in texts]


def no_keys(key: str) -> tuple[str, ...] | None:
    return None


@pytest.mark.parametrize(
    ("name", "base", "qualifier", "if_exists"),
    [
        ("StringLike", "StringLike", None, False),
        ("StringNotEqualsIgnoreCaseIfExists", "StringNotEqualsIgnoreCase", None, True),
        ("ForAnyValue:StringEquals", "StringEquals", "ForAnyValue", False),
        ("ForAllValues:StringNotLikeIfExists", "StringNotLike", "ForAllValues", True),
        ("Null", "Null", None, False),
        ("NumericLessThanIfExists", "NumericLessThan", None, True),
    ],
)
def test_operator_names_come_apart(
    name: str, base: str, qualifier: str | None, if_exists: bool
) -> None:
    assert parse_operator(name) == Operator(name, base, qualifier, if_exists)


@pytest.mark.parametrize(
    "name",
    [
        "StringEqual",
        "stringequals",
        "NullIfExists",
        "ForAnyValue:Null",
        "ForSomeValues:StringEquals",
        "IfExists",
        "StringLikeIfExistsIfExists",
    ],
)
def test_unknown_operator_names(name: str) -> None:
    assert parse_operator(name) is None


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("a*", "a", True),
        ("a*", "abc/def:ghi", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a.c", "abc", False),
        ("a+", "aa", False),
        ("(a|b)", "a", False),
        ("(a|b)", "(a|b)", True),
        ("[ab]", "a", False),
        ("x{2}", "xx", False),
        ("^a$", "^a$", True),
        ("a\\d", "a1", False),
        ("a\\d", "a\\d", True),
        ("*\n*", "line\nline", True),
        ("a*", "a\nb", True),
    ],
)
def test_glob_has_two_wildcards_and_nothing_else(pattern: str, value: str, matches: bool) -> None:
    assert glob_matches((Chunk(pattern),), value) is matches


def test_literal_chunks_never_hold_wildcards() -> None:
    assert glob_matches((Chunk("a"), Chunk("*", raw=False)), "a*")
    assert not glob_matches((Chunk("a"), Chunk("*", raw=False)), "ab")


def test_policy_variables_are_resolved_only_when_enabled() -> None:
    def lookup(key: str) -> tuple[str, ...] | None:
        return {"aws:requesttag/team": ("t1",)}.get(key.lower())

    assert resolve("a${*}b", lookup, variables=False) == (Chunk("a${*}b"),)
    assert resolve("a${*}b", lookup, variables=True) == (
        Chunk("a"),
        Chunk("*", raw=False),
        Chunk("b"),
    )
    assert resolve("${aws:RequestTag/team}/*", lookup, variables=True) == (
        Chunk("t1", raw=False),
        Chunk("/*"),
    )
    assert resolve("${aws:RequestTag/host, 'none'}", lookup, variables=True) == (
        Chunk("none", raw=False),
    )
    assert resolve("${aws:RequestTag/host}", lookup, variables=True) is None


def test_an_unresolvable_variable_fails_even_a_negated_operator() -> None:
    found = evaluate(op("StringNotEquals"), ("x",), [None])
    assert not found.passed
    assert "variable" in found.note


@pytest.mark.parametrize(
    ("name", "request_values", "policy", "held"),
    [
        # absent keys (None) and empty ones
        ("StringEquals", None, ["a"], False),
        ("StringNotEquals", None, ["a"], True),
        ("StringNotLike", None, ["*"], True),
        ("StringLikeIfExists", None, ["b"], True),
        ("ForAnyValue:StringEquals", None, ["a"], False),
        ("ForAnyValue:StringNotEquals", None, ["a"], False),
        ("ForAllValues:StringEquals", None, ["a"], True),
        ("ForAllValues:StringEquals", ("",), ["a"], True),
        ("ForAnyValue:StringEquals", ("",), ["a"], False),
        ("ForAnyValue:StringEqualsIfExists", None, ["a"], True),
        # several policy values: OR, and NOR when negated
        ("StringEquals", ("b",), ["a", "b"], True),
        ("StringNotEquals", ("b",), ["a", "b"], False),
        ("StringNotEquals", ("c",), ["a", "b"], True),
        ("StringNotLike", ("ab",), ["x*", "a*"], False),
        # set operators on several request values
        ("ForAnyValue:StringEquals", ("a", "b"), ["b"], True),
        ("ForAllValues:StringEquals", ("a", "b"), ["b"], False),
        ("ForAllValues:StringEquals", ("a", "b"), ["a", "b", "c"], True),
        ("ForAnyValue:StringNotEquals", ("a", "b"), ["a"], True),
        ("ForAllValues:StringNotLike", ("key1:legal",), ["key1*"], False),
        ("ForAllValues:StringNotLike", ("key2:audit",), ["key1*"], True),
        # case
        ("StringEqualsIgnoreCase", ("ABC",), ["abc"], True),
        ("StringNotEqualsIgnoreCase", ("ABC",), ["abc"], False),
        ("StringLike", ("ABC",), ["abc*"], False),
    ],
)
def test_operator_semantics(
    name: str, request_values: tuple[str, ...] | None, policy: list[str], held: bool
) -> None:
    assert evaluate(op(name), request_values, values(*policy)).passed is held


@pytest.mark.parametrize(
    ("policy", "request_values", "held"),
    [
        (["true"], None, True),
        (["true"], ("x",), False),
        (["false"], ("x",), True),
        (["false"], None, False),
        (["TRUE"], None, True),
        (["false"], (), False),
    ],
)
def test_null_tests_presence(
    policy: list[str], request_values: tuple[str, ...] | None, held: bool
) -> None:
    assert evaluate(op("Null"), request_values, values(*policy)).passed is held


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("2026-11-28T12:00:00Z", 1795867200),
        ("2026-11-28T13:00:00+01:00", 1795867200),
        ("2026-11-28T12:00:00.500Z", 1795867200.5),
        ("2026-11-28T12:00:00", 1795867200),  # no offset: UTC
        ("2026-11-28", 1795824000),
        ("1795867200", 1795867200),
        (" 1795867200 ", 1795867200),
        ("yesterday", None),
        ("", None),
    ],
)
def test_dates_are_iso_8601_or_epoch_seconds(written: str, seconds: float | None) -> None:
    assert instant(written) == seconds


@pytest.mark.parametrize(
    ("name", "request_values", "policy", "held"),
    [
        ("DateGreaterThan", ("2026-11-28T12:00:00Z",), ["2026-11-01T00:00:00Z"], True),
        ("DateGreaterThan", ("2026-11-28T12:00:00Z",), ["2026-11-28T12:00:00Z"], False),
        ("DateGreaterThanEquals", ("2026-11-28T12:00:00Z",), ["1795867200"], True),
        ("DateLessThan", ("1795867200",), ["2026-11-28T12:00:01Z"], True),
        ("DateLessThanEquals", ("1795867200",), ["2026-11-28T11:59:59Z"], False),
        ("DateEquals", ("1795867200",), ["2026-11-28T12:00:00Z"], True),
        ("DateNotEquals", ("1795867200",), ["2026-11-28T12:00:00Z"], False),
        ("DateNotEquals", ("1795867200",), ["2026-01-01"], True),
        ("DateLessThan", ("1795867200",), ["soon"], False),  # not a date: no match
        ("DateLessThanIfExists", None, ["2026-01-01"], True),
        ("DateLessThan", None, ["2026-01-01"], False),
        ("DateLessThan", ("1795867200",), ["2020-01-01", "2030-01-01"], True),  # OR
        ("NumericLessThan", ("1795867200",), ["1795867201"], True),
        ("NumericGreaterThanEquals", ("1795867200",), ["1795867201"], False),
        ("NumericEquals", ("10",), ["10.0"], True),
    ],
)
def test_date_and_numeric_operators(
    name: str, request_values: tuple[str, ...] | None, policy: list[str], held: bool
) -> None:
    operator = op(name)
    assert operator.supported
    assert operator.ordered
    assert evaluate(operator, request_values, values(*policy)).passed is held
