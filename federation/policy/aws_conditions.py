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
  other character, regex metacharacters included, stands for itself.

Policy variables (``${...}``, policy version 2012-10-17 only) are resolved here too:
``${*}``, ``${?}`` and ``${$}`` are the literal characters, ``${key}`` a key's value,
``${key, 'default'}`` with a fallback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
# Valid IAM operators the tester does not evaluate: no key it knows takes them.
OTHER_OPERATORS = frozenset(
    {
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "DateEquals",
        "DateNotEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEquals",
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
        return self.base in STRING_OPERATORS or self.base == "Null"

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
    if base not in STRING_OPERATORS and base not in OTHER_OPERATORS:
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


def _positive(base: str, request: str, policy: Value) -> bool:
    """The non-negated form of ``base`` for one request value and one policy value."""
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
        return Outcome(True, f"{matched[0]!r} matches")
    verb = "matches no pattern" if operator.like else "equals no value"
    return Outcome(False, f"{request[0]!r} {verb} of the policy")
