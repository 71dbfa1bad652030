"""The monitor's rules file: match/unless conditions on entry fields with StringLike
patterns, and every mistake in a file named rather than ignored."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from federation.auditor.rules import Pattern, Rules
from federation.errors import InvalidRequest
from tests.transparency.logs import sample_entry

ENTRY = replace(
    sample_entry(1),
    sub="repo:acme/deploy:ref:refs/heads/main",
    aud="sts.amazonaws.com",
    team=None,
)


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("repo:acme/*", "repo:acme/deploy:ref:refs/heads/main", True),  # * crosses / and :
        ("repo:acme/*:ref:refs/heads/main", "repo:acme/x:ref:refs/heads/main", True),
        ("repo:acme/*:ref:refs/heads/main", "repo:acme/x:ref:refs/heads/dev", False),
        ("repo:acme/?", "repo:acme/x", True),
        ("repo:acme/?", "repo:acme/xy", False),
        ("repo:acme/*", "REPO:acme/x", False),  # case-sensitive
        ("repo:acme", "repo:acme/x", False),  # the whole value
        ("a.b", "axb", False),  # every other character is itself
        ("[ab]", "a", False),
        ("[ab]", "[ab]", True),
        ("a***b", "a-b", True),
        ("*", "", True),
        ("x*", "x\ny", True),
    ],
)
def test_patterns_are_string_like(pattern: str, value: str, matches: bool) -> None:
    assert Pattern(pattern).matches(value) is matches


def test_a_missing_value_matches_no_pattern() -> None:
    assert not Pattern("*").matches(None)


def reported(text: str) -> list[str]:
    return [rule.name for rule in Rules.parse(text).reporting(ENTRY)]


def test_match_needs_every_field_and_unless_exempts_when_every_field_matches() -> None:
    rules = """
        [[rule]]
        name = "aws off main"
        match.aud = "sts.amazonaws.com"
        match.sub = "repo:acme/*"
        unless.sub = "repo:acme/*:ref:refs/heads/main"

        [[rule]]
        name = "unexpected subject"
        unless.sub = ["spiffe://acme.example/*", "repo:other/*"]

        [[rule]]
        name = "allowed combination"
        unless.sub = "repo:acme/*"
        unless.aud = "api://AzureADTokenExchange"

        [[rule]]
        name = "wrong audience only"
        match.aud = "api://*"
        match.sub = "repo:acme/*"

        [[rule]]
        name = "every token"
    """
    assert reported(rules) == ["unexpected subject", "allowed combination", "every token"]


def test_a_token_without_a_team_matches_no_team_pattern() -> None:
    rules = """
        [[rule]]
        name = "any team"
        match.team = "*"

        [[rule]]
        name = "no team"
        unless.team = "*"
    """
    assert reported(rules) == ["no team"]


def test_no_rules_report_nothing() -> None:
    assert Rules.parse("").reporting(ENTRY) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[rule]]\nname = 'x'\nmatch.subject = 'a'\n", "match.subject is not an entry field"),
        ("[[rule]]\nname = 'x'\nunles.sub = 'a'\n", "unknown key 'unles'"),
        ("[[rules]]\nname = 'x'\n", "unknown key 'rules'"),
        ("[[rule]]\nmatch.sub = 'a'\n", "rule 1 has no name"),
        ("[[rule]]\nname = 'x'\nmatch.sub = 1\n", "match.sub is a pattern or a list"),
        ("[[rule]]\nname = 'x'\nmatch.sub = []\n", "match.sub is a pattern or a list"),
        ("[[rule]]\nname = 'x'\nmatch.sub = ['']\n", "match.sub is a pattern or a list"),
        ("[[rule]]\nname = 'x'\nmatch = 'a'\n", "match is a table of entry fields"),
        ("[[rule]]\nname = 'x'\n[[rule]]\nname = 'x'\n", "two rules are named 'x'"),
        ("rule = 'x'\n", "'rule' is a list of tables"),
        ("[[rule]\n", "not TOML"),
    ],
)
def test_mistakes_are_named(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        Rules.parse(text)


def test_a_file_names_itself_in_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[[rule]]\nname = 'x'\nmatch.subject = 'a'\n")

    with pytest.raises(InvalidRequest, match=f"the rules file {path}: rule 'x'"):
        Rules.from_file(path)
    with pytest.raises(InvalidRequest, match="cannot read the rules file"):
        Rules.from_file(tmp_path / "missing.toml")
