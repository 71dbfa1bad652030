"""The monitor's rules: which logged tokens to report, written in TOML.

A rules file holds any number of ``[[rule]]`` tables. Each has a ``name`` and up to two
sets of conditions on the entry's fields, ``match`` and ``unless``; a rule reports an
entry when every ``match`` condition holds and not every ``unless`` condition does::

    # Any token whose subject is not one of the deployments we run.
    [[rule]]
    name = "unexpected subject"
    unless.sub = ["repo:acme/*:ref:refs/heads/main", "spiffe://acme.example/ns/prod/*"]

    # A token for AWS, for our repositories, from anything but main.
    [[rule]]
    name = "AWS token off main"
    match.aud = "sts.amazonaws.com"
    match.sub = "repo:acme/*"
    unless.sub = "repo:acme/*:ref:refs/heads/main"

A condition names an entry field (``iss``, ``sub``, ``aud``, ``jti``, ``kid``, ``alg``,
``run_id``, ``principal``, ``team``, ``token_sha256``) and one pattern or a list of
them; it holds when the field matches any of them. Patterns match the whole value, case
sensitively, as AWS's ``StringLike`` does: ``*`` stands for any run of characters
(``/`` and ``:`` included), ``?`` for exactly one; every other character is itself. A
token without a team matches no ``team`` pattern. A rule with no condition reports
every entry (for an issuer that should issue nothing). Anything else in the file, an
unknown field or a misspelt key, is an error naming it: a rule that silently never
fires is worse than none.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from federation.errors import InvalidRequest
from federation.transparency.entries import LogEntry

FIELDS = (
    "iss",
    "sub",
    "aud",
    "jti",
    "kid",
    "alg",
    "run_id",
    "principal",
    "team",
    "token_sha256",
)
MAX_RULES = 1000
MAX_PATTERNS = 1000


@dataclass(frozen=True)
class Pattern:
    """A ``StringLike`` pattern: ``*`` any run of characters, ``?`` one."""

    text: str
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Runs of * are one *: the same language, without the backtracking.
        parts = re.split(r"(\*+|\?)", self.text)
        source = "".join(
            ".*" if part.startswith("*") else "." if part == "?" else re.escape(part)
            for part in parts
        )
        object.__setattr__(self, "_regex", re.compile(source, re.DOTALL))

    def matches(self, value: str | None) -> bool:
        return value is not None and self._regex.fullmatch(value) is not None


Conditions = Mapping[str, tuple[Pattern, ...]]


@dataclass(frozen=True)
class Rule:
    """A named rule: it reports an entry when ``match`` holds and ``unless`` does not."""

    name: str
    match: Conditions
    unless: Conditions

    def reports(self, entry: LogEntry) -> bool:
        if not _holds(self.match, entry):
            return False
        return not (self.unless and _holds(self.unless, entry))


@dataclass(frozen=True)
class Rules:
    """The rules of one file, in its order."""

    rules: tuple[Rule, ...] = ()

    def reporting(self, entry: LogEntry) -> list[Rule]:
        """The rules that report ``entry``."""
        return [rule for rule in self.rules if rule.reports(entry)]

    @classmethod
    def from_file(cls, path: Path) -> Rules:
        """The rules in the TOML file at ``path``; :class:`InvalidRequest` naming the
        file and what is wrong."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise InvalidRequest(f"cannot read the rules file {path}: {reason}") from None
        try:
            return cls.parse(text)
        except InvalidRequest as exc:
            raise InvalidRequest(f"the rules file {path}: {exc.detail}") from None

    @classmethod
    def parse(cls, text: str) -> Rules:
        """The rules in ``text`` (TOML, see the module's docstring)."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidRequest(f"not TOML: {exc}") from None
        unknown = sorted(set(document) - {"rule"})
        if unknown:
            raise InvalidRequest(f"unknown key {unknown[0]!r}: a rules file holds [[rule]] tables")
        tables = document.get("rule", [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise InvalidRequest("'rule' is a list of tables: write each as [[rule]]")
        if len(tables) > MAX_RULES:
            raise InvalidRequest(f"more than {MAX_RULES} rules")
        rules = [_rule(number, table) for number, table in enumerate(tables, 1)]
        names = [rule.name for rule in rules]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise InvalidRequest(f"two rules are named {twice[0]!r}: names tell alerts apart")
        return cls(tuple(rules))


def _rule(number: int, table: dict[str, object]) -> Rule:
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest(f'rule {number} has no name: give it name = "..."')
    where = f"rule {name!r}"
    unknown = sorted(set(table) - {"name", "match", "unless"})
    if unknown:
        raise InvalidRequest(
            f"{where}: unknown key {unknown[0]!r} (a rule has name, match, unless)"
        )
    return Rule(
        name=name,
        match=_conditions(table.get("match", {}), f"{where}: match"),
        unless=_conditions(table.get("unless", {}), f"{where}: unless"),
    )


def _conditions(value: object, where: str) -> dict[str, tuple[Pattern, ...]]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} is a table of entry fields")
    conditions = {}
    for name, patterns in value.items():
        if name not in FIELDS:
            raise InvalidRequest(
                f"{where}.{name} is not an entry field (one of {', '.join(FIELDS)})"
            )
        listed = [patterns] if isinstance(patterns, str) else patterns
        if (
            not isinstance(listed, list)
            or not listed
            or len(listed) > MAX_PATTERNS
            or not all(isinstance(p, str) and p for p in listed)
        ):
            raise InvalidRequest(f"{where}.{name} is a pattern or a list of patterns")
        conditions[name] = tuple(Pattern(p) for p in listed)
    return conditions


def _holds(conditions: Conditions, entry: LogEntry) -> bool:
    return all(
        any(pattern.matches(getattr(entry, name)) for pattern in patterns)
        for name, patterns in conditions.items()
    )
