"""IAM condition operators, as a role trust policy applies them to a request context.

The rules, from AWS's condition-operator and multivalued-key pages:

* a key that is not in the request matches nothing, so the condition is false, except
  for a negated operator (``StringNotEquals``, ``StringNotLike``...), which is true;
* ``...IfExists`` is true when the key is absent, and otherwise the plain operator;
* ``Null`` tests presence only: ``"true"`` holds when the key is absent;
* several policy values are ORed, and for a negated operator NORed;
* ``ForAnyValue:`` holds when some request value satisfies the operator (false on an
  absent or empty key); ``ForAllValues:`` when every request value does (true on an
  absent or empty key, which is why it is dangerous in an Allow);
* ``StringLike`` knows two wildcards, ``*`` (any run) and ``?`` (one character); every
  other character, regex metacharacters included, stands for itself;
* ``Date...`` operators compare instants, each side written in ISO 8601 (``2026-11-28``,
  ``2026-11-28T12:00:00Z``, with an offset or fractions) or as seconds since the epoch;
  ``Numeric...`` operators compare numbers. A value that is neither matches nothing.

Policy variables (``${...}``, policy version 2012-10-17 only) are resolved here too:
``${*}``, ``${?}`` and ``${$}`` are the literal characters, ``${key}`` a key's value,
``${key, 'default'}`` with a fallback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

STRING_OPERATORS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
    }
)
_COMPARISONS = (
    "Equals",
    "NotEquals",
    "LessThan",
    "LessThanEquals",
    "GreaterThan",
    "GreaterThanEquals",
)
DATE_OPERATORS = frozenset(f"Date{name}" for name in _COMPARISONS)
NUMERIC_OPERATORS = frozenset(f"Numeric{name}" for name in _COMPARISONS)
ORDERED_OPERATORS = DATE_OPERATORS | NUMERIC_OPERATORS
# Valid IAM operators the tester does not evaluate: no key it knows takes them.
OTHER_OPERATORS = frozenset(
    {
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
    }
)
QUALIFIERS = ("ForAnyValue", "ForAllValues")
_IF_EXISTS = "IfExists"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^\s*([^,]+?)\s*,\s*'([^']*)'\s*$")

Lookup = Callable[[str], "tuple[str, ...] | None"]


@dataclass(frozen=True)
class Operator:
    """A condition operator name taken apart: ``ForAnyValue:StringLikeIfExists``."""

    name: str
    base: str
    qualifier: str | None = None
    if_exists: bool = False

    @property
    def negated(self) -> bool:
        return "Not" in self.base

    @property
    def supported(self) -> bool:
        return (
            self.base in STRING_OPERATORS or self.base in ORDERED_OPERATORS or self.base == "Null"
        )

    @property
    def ordered(self) -> bool:
        """A ``Date...`` or ``Numeric...`` operator: compares values, not strings."""
        return self.base in ORDERED_OPERATORS

    @property
    def like(self) -> bool:
        return self.base in ("StringLike", "StringNotLike")


def parse_operator(name: str) -> Operator | None:
    """The operator, or None when IAM knows no such operator."""
    qualifier: str | None = None
    rest = name
    if ":" in name:
        qualifier, rest = name.split(":", 1)
        if qualifier not in QUALIFIERS:
            return None
    if_exists = rest.endswith(_IF_EXISTS) and rest != _IF_EXISTS
    base = rest[: -len(_IF_EXISTS)] if if_exists else rest
    if base == "Null":
        # NOTE: AWS: IfExists may be added to any operator except Null.
        return None if (if_exists or qualifier) else Operator(name, base)
    known = STRING_OPERATORS | ORDERED_OPERATORS | OTHER_OPERATORS
    if base not in known:
        return None
    return Operator(name, base, qualifier, if_exists)


@dataclass(frozen=True)
class Chunk:
    """Part of a policy value: ``raw`` text may hold wildcards, other text is literal."""

    text: str
    raw: bool = True


Value = tuple[Chunk, ...]


def resolve(value: str, lookup: Lookup, *, variables: bool) -> Value | None:
    """A policy value with its variables replaced; None when a variable names a key
    the request lacks and gives no default (such a value matches nothing)."""
    if not variables or "${" not in value:
        return (Chunk(value),)
    chunks: list[Chunk] = []
    position = 0
    for found in _VARIABLE.finditer(value):
        chunks.append(Chunk(value[position : found.start()]))
        position = found.end()
        inner = found.group(1)
        if inner in ("*", "?", "$"):
            chunks.append(Chunk(inner, raw=False))
            continue
        default = _DEFAULT.match(inner)
        key = default.group(1) if default else inner.strip()
        values = lookup(key)
        if values and len(values) == 1:
            chunks.append(Chunk(values[0], raw=False))
        elif default:
            chunks.append(Chunk(default.group(2), raw=False))
        else:
            return None
    chunks.append(Chunk(value[position:]))
    return tuple(chunk for chunk in chunks if chunk.text)


def text(value: Value) -> str:
    return "".join(chunk.text for chunk in value)


@lru_cache(maxsize=1024)
def _regex(value: Value) -> re.Pattern[str]:
    parts: list[str] = []
    for chunk in value:
        if not chunk.raw:
            parts.append(re.escape(chunk.text))
            continue
        for character in chunk.text:
            # NOTE: escape everything but the two IAM wildcards; PMapper escaped only
            # `. $ ^`, so `+`, `(`, `[` in a pattern changed its meaning there.
            parts.append(
                ".*" if character == "*" else "." if character == "?" else re.escape(character)
            )
    return re.compile("".join(parts), re.DOTALL)


def glob_matches(pattern: Value, value: str) -> bool:
    return _regex(pattern).fullmatch(value) is not None


_EPOCH = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def instant(value: str) -> float | None:
    """Seconds since the epoch of a date as IAM reads one: ISO 8601 (UTC unless an
    offset is given) or a number of seconds. None when it is neither."""
    written = value.strip()
    if _EPOCH.fullmatch(written):
        return float(written)
    try:
        moment = datetime.fromisoformat(written)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def number(value: str) -> float | None:
    written = value.strip()
    return float(written) if _EPOCH.fullmatch(written) else None


def _ordered(base: str, request: str, policy: str) -> bool:
    """``request <op> policy`` for a ``Date...`` or ``Numeric...`` operator."""
    read = instant if base.startswith("Date") else number
    left, right = read(request), read(policy)
    if left is None or right is None:
        return False
    comparison = base.removeprefix("Date").removeprefix("Numeric")
    if comparison in ("Equals", "NotEquals"):
        return left == right
    if comparison == "LessThan":
        return left < right
    if comparison == "LessThanEquals":
        return left <= right
    if comparison == "GreaterThan":
        return left > right
    return left >= right


def _positive(base: str, request: str, policy: Value) -> bool:
    """The non-negated form of ``base`` for one request value and one policy value."""
    if base in ORDERED_OPERATORS:
        return _ordered(base, request, text(policy))
    if base in ("StringLike", "StringNotLike"):
        return glob_matches(policy, request)
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return request.casefold() == text(policy).casefold()
    return request == text(policy)


@dataclass(frozen=True)
class Outcome:
    passed: bool
    note: str


def evaluate(
    operator: Operator, request: Sequence[str] | None, policy: Sequence[Value | None]
) -> Outcome:
    """Whether one condition (operator, one key) holds for the request's values of the
    key (None when the key is absent) against the policy's values."""
    if any(value is None for value in policy):
        # AWS: a variable that cannot be resolved makes any attempt to match fail and the
        # statement invalid, whatever the operator.
        return Outcome(False, "a policy variable names a key the request lacks")
    values = [value for value in policy if value is not None]
    if operator.base == "Null":
        absent = not request
        wanted = [text(value).lower() == "true" for value in values]
        held = any(want == absent for want in wanted)
        state = "absent" if absent else "present"
        return Outcome(held, f"the key is {state}")
    empty = not request or all(value == "" for value in request)
    if not request or (operator.qualifier and empty):
        if operator.if_exists:
            return Outcome(True, "the key is absent, and IfExists holds on an absent key")
        if operator.qualifier == "ForAllValues":
            return Outcome(True, "the key is absent or empty, and ForAllValues holds vacuously")
        if operator.qualifier == "ForAnyValue":
            return Outcome(False, "the key is absent or empty, and ForAnyValue needs a value")
        if operator.negated:
            return Outcome(True, f"the key is absent, and {operator.base} holds on an absent key")
        return Outcome(False, "the key is absent from the request, so nothing matches")

    def one(value: str) -> bool:
        matched = any(_positive(operator.base, value, pattern) for pattern in values)
        return not matched if operator.negated else matched

    if operator.qualifier == "ForAllValues":
        misses = [value for value in request if not one(value)]
        if misses:
            return Outcome(False, f"{misses[0]!r} does not satisfy {operator.base}")
        return Outcome(True, f"every value satisfies {operator.base}")
    if operator.qualifier == "ForAnyValue":
        hits = [value for value in request if one(value)]
        if hits:
            return Outcome(True, f"{hits[0]!r} satisfies {operator.base}")
        return Outcome(False, f"no value satisfies {operator.base}")
    # A plain operator on a multivalued key: any request value may match (negated: none).
    matched = [
        value for value in request if any(_positive(operator.base, value, p) for p in values)
    ]
    if operator.negated:
        if matched:
            return Outcome(False, f"{matched[0]!r} matches a value the operator excludes")
        return Outcome(True, "no value matches a value the operator excludes")
    if matched:
        verb = f"satisfies {operator.base}" if operator.ordered else "matches"
        return Outcome(True, f"{matched[0]!r} {verb}")
    if operator.ordered:
        return Outcome(False, f"{request[0]!r} does not satisfy {operator.base} with any value")
    verb = "matches no pattern" if operator.like else "equals no value"
    return Outcome(False, f"{request[0]!r} {verb} of the policy")
