"""A GCP provider's attribute mapping and attribute condition, applied to a token.

The rules are those of the IAM reference for ``WorkloadIdentityPoolProvider``: an OIDC
provider must map ``google.subject`` (at most 127 bytes); ``google.groups`` and up to 50
``attribute.<name>`` (name ``[a-z0-9_]``, at most 100 characters) may be mapped; each
mapping expression is at most 2048 characters and all mapped attributes together at most
8KB; the condition is at most 4096 characters and must output a boolean.

What GCP checks when the provider is saved (the keys, the limits on expressions, that
each expression and the condition parse as CEL) is :func:`problem`: a provider failing it
cannot exist (``INVALID_ARGUMENT``). What depends on the token (the mapped values, their
sizes, the condition's outcome) is checked by :func:`map_attributes` and
:func:`check_condition`, on a provider that passed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from federation.domain.subjects import GCP_SUBJECT_LIMIT
from federation.domain.tokens import CLAIMS_SUPPORTED
from federation.policy import gcp_cel
from federation.policy.prefixes import explain, open_ended
from federation.policy.result import Check

SUBJECT = "google.subject"
GROUPS = "google.groups"
ATTRIBUTE_PREFIX = "attribute."
NEAR_SUBJECT_LIMIT = 100  # bytes: a longer team or environment name may soon push it over
MAX_CUSTOM_ATTRIBUTES = 50
MAX_MAPPING_EXPRESSION = 2048
MAX_MAPPED_BYTES = 8 * 1024
MAX_CONDITION = 4096
# What a condition must pin down for the provider to admit one workload, not all of them.
IDENTIFYING_CLAIMS = frozenset({"sub", "teams"})
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9_]{1,100}")

NO_MAPPING = (
    "For OIDC providers, you must supply a custom mapping, which must include the "
    "google.subject attribute"
)
REJECTED = "The given credential is rejected by the attribute condition"


@dataclass(frozen=True)
class Outcome:
    """The checks one stage made, the first refusal among them, and its warnings."""

    checks: tuple[Check, ...] = ()
    refusal: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mapped:
    """The attributes GCP would map from the token, with how they were found."""

    outcome: Outcome
    expressions: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)  # by mapping key

    @property
    def subject(self) -> str | None:
        value = self.values.get(SUBJECT)
        return value if isinstance(value, str) else None

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(self.values.get(GROUPS, ()))

    @property
    def google(self) -> dict[str, Any]:
        """The ``google`` variable of a condition."""
        names = {SUBJECT: "subject", GROUPS: "groups"}
        return {names[key]: value for key, value in self.values.items() if key in names}

    @property
    def attributes(self) -> dict[str, Any]:
        """The ``attribute`` variable of a condition: custom attributes by name."""
        return {
            key.removeprefix(ATTRIBUTE_PREFIX): value
            for key, value in self.values.items()
            if key.startswith(ATTRIBUTE_PREFIX)
        }

    def claims_behind(self, key: str) -> frozenset[str]:
        """The claims the mapping of ``key`` reads."""
        expression = self.expressions.get(key, "")
        return frozenset(
            name for root, name in gcp_cel.references(expression) if root == "assertion"
        )


def problem(mapping: object, condition: object) -> str | None:
    """Why GCP would refuse to save a provider with this mapping and condition."""
    if not isinstance(mapping, dict) or not mapping:
        return f"{NO_MAPPING}, and this provider has none"
    found = _mapping_problem(mapping)
    if found:
        return f"the attribute mapping is not valid: {found}"
    for key, expression in mapping.items():
        try:
            gcp_cel.check(expression, roots=gcp_cel.MAPPING_ROOTS)
        except gcp_cel.CelSyntaxError as exc:
            return f"the mapping of {key} is not valid CEL over assertion: {exc}"
    if condition is None or condition == "":
        return None
    if not isinstance(condition, str):
        return "the attribute condition is not valid: it must be a string"
    if len(condition) > MAX_CONDITION:
        return (
            f"the attribute condition is not valid: it is {len(condition)} characters, more "
            f"than the {MAX_CONDITION} allowed"
        )
    try:
        gcp_cel.check(condition)
    except gcp_cel.CelSyntaxError as exc:
        return f"the attribute condition is not valid CEL: {exc}"
    return None


def map_attributes(mapping: Mapping[str, str], claims: Mapping[str, Any]) -> Mapped:
    """Apply the provider's ``attributeMapping`` (valid: :func:`problem`) to the token's
    claims."""
    expressions: dict[str, str] = dict(mapping)
    checks: list[Check] = []
    refusals: list[str] = []
    values: dict[str, Any] = {}
    for key, expression in expressions.items():
        check, value = _map_one(key, expression, claims)
        checks.append(check)
        if check.passed:
            values[key] = value
        else:
            refusals.append(f"GCP cannot map {key}: {check.note}")
    warnings = [*_foreign_claims(expressions)]
    subject = values.get(SUBJECT)
    if isinstance(subject, str):
        check, warning = _subject_size(subject)
        checks.append(check)
        if not check.passed:
            refusals.append(check.note)
        if warning:
            warnings.append(warning)
    total = sum(_size(key) + _size(value) for key, value in values.items())
    fits = total <= MAX_MAPPED_BYTES
    checks.append(
        Check(
            "mapped attributes: total size",
            fits,
            {"bytes": total, "limit": MAX_MAPPED_BYTES},
            "" if fits else "the total size of all mapped attributes must not exceed 8KB",
        )
    )
    if not fits:
        refusals.append(
            f"the total size of all mapped attributes must not exceed 8KB, and it is {total} bytes"
        )
    refusal = _sentence(refusals[0]) if refusals else None
    return Mapped(Outcome(tuple(checks), refusal, tuple(warnings)), expressions, values)


def check_condition(condition: object, claims: Mapping[str, Any], mapped: Mapped) -> Outcome:
    """Evaluate the provider's ``attributeCondition`` (valid: :func:`problem`) over the
    token and its mapping."""
    if condition is None or condition == "":
        note = "no attribute condition: every token the provider validates is accepted"
        warning = (
            "The provider has no attribute condition, so GCP accepts any token of the issuer "
            "that carries an accepted audience: add one that pins assertion.sub or "
            "assertion.teams."
        )
        return Outcome(
            (Check("attribute condition", True, {"expression": None}, note),), None, (warning,)
        )
    if not isinstance(condition, str):
        raise TypeError("check the provider with problem() first")
    variables = {"assertion": claims, "google": mapped.google, "attribute": mapped.attributes}
    inputs = _inputs(condition, variables)
    result = gcp_cel.evaluate(condition, variables)
    warnings = [*_unconstrained(condition, mapped), *_prefix_traps(condition)]
    if not result.ok:
        detail = f"{REJECTED}: evaluating it failed ({result.error})"
        return _condition_refused(condition, inputs, detail, warnings)
    if not isinstance(result.value, bool):
        kind = gcp_cel.type_name(result.value)
        detail = f"{REJECTED}: it must output a boolean, and it gave a {kind}"
        return _condition_refused(condition, inputs, detail, warnings, result.value)
    if not result.value:
        if not inputs and not gcp_cel.references(condition):
            warnings = []  # a constant refusal admits nobody: nothing to constrain
        detail = f"{REJECTED}: {_shown(condition)} evaluates to false{_given(inputs)}"
        return _condition_refused(condition, inputs, detail, warnings, False)
    compared = {"expression": condition, "value": True, **inputs}
    return Outcome((Check("attribute condition", True, compared),), None, tuple(warnings))


def _condition_refused(
    condition: object,
    inputs: Mapping[str, Any],
    reason: str,
    warnings: list[str] | None = None,
    value: Any = None,
) -> Outcome:
    compared = {"expression": condition, "value": value, **inputs}
    check = Check("attribute condition", False, compared, reason)
    return Outcome((check,), _sentence(reason), tuple(warnings or ()))


def _inputs(condition: str, variables: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The values a condition reads, by the names it reads them with."""
    found = {}
    for root, name in sorted(gcp_cel.references(condition)):
        scope = variables.get(root, {})
        if name in scope:
            found[f"{root}.{name}"] = scope[name]
    return found


def _shown(expression: str, limit: int = 160) -> str:
    return repr(expression if len(expression) <= limit else expression[: limit - 3] + "...")


def _given(inputs: Mapping[str, Any]) -> str:
    if not inputs:
        return ""
    shown = [f"{name} = {value!r}" for name, value in list(inputs.items())[:3]]
    return f" for {', '.join(shown)}"


def _mapping_problem(mapping: dict[Any, Any]) -> str:
    custom = 0
    for key, expression in mapping.items():
        if not isinstance(key, str) or not isinstance(expression, str):
            return "keys and expressions must be strings"
        if key.startswith(ATTRIBUTE_PREFIX):
            custom += 1
            if not _ATTRIBUTE_NAME.fullmatch(key.removeprefix(ATTRIBUTE_PREFIX)):
                return (
                    f"custom attribute {key!r}: the name may only contain the characters "
                    "[a-z0-9_], at most 100 of them"
                )
        elif key not in (SUBJECT, GROUPS):
            return f"{key!r} is not google.subject, google.groups or attribute.<name>"
        if len(expression) > MAX_MAPPING_EXPRESSION:
            return (
                f"the expression for {key} is {len(expression)} characters; the maximum "
                f"length of an attribute mapping expression is {MAX_MAPPING_EXPRESSION}"
            )
    if custom > MAX_CUSTOM_ATTRIBUTES:
        return f"{custom} custom attributes; you can define a maximum of {MAX_CUSTOM_ATTRIBUTES}"
    if SUBJECT not in mapping:
        return NO_MAPPING
    return ""


def _map_one(key: str, expression: str, claims: Mapping[str, Any]) -> tuple[Check, Any]:
    what = f"mapping {key}"
    result = gcp_cel.evaluate(expression, {"assertion": claims}, roots=gcp_cel.MAPPING_ROOTS)
    if not result.ok:
        note = f"the expression failed ({result.error})"
        return Check(what, False, {"expression": expression, "error": result.error}, note), None
    value = result.value
    compared = {"expression": expression, "value": value}
    problem = _value_problem(key, value)
    if problem:
        return Check(what, False, compared, problem), None
    return Check(what, True, compared), value


def _value_problem(key: str, value: Any) -> str:
    # NOTE: GCP documents the values' types only by example (strings; a list for groups);
    # anything else is refused here, so the tester never promises an unknown outcome.
    strings = isinstance(value, list) and all(isinstance(item, str) for item in value)
    if key == SUBJECT:
        if not isinstance(value, str):
            return f"google.subject must be a string, and it is a {gcp_cel.type_name(value)}"
        return "" if value else "google.subject is empty"
    if key == GROUPS:
        kind = gcp_cel.type_name(value)
        return "" if strings else f"google.groups must be a list of strings, and it is a {kind}"
    if isinstance(value, str) or strings:
        return ""
    return f"{key} must be a string or a list of strings, and it is a {gcp_cel.type_name(value)}"


def _subject_size(subject: str) -> tuple[Check, str]:
    size = len(subject.encode())
    fits = size <= GCP_SUBJECT_LIMIT
    note = (
        ""
        if fits
        else f"The size of mapped attribute google.subject exceeds the {GCP_SUBJECT_LIMIT} "
        f"bytes limit: it is {size} bytes"
    )
    check = Check("google.subject size", fits, {"bytes": size, "limit": GCP_SUBJECT_LIMIT}, note)
    warning = ""
    if not fits:
        warning = (
            f"google.subject is {size} bytes, over GCP's {GCP_SUBJECT_LIMIT}-byte limit "
            "(multi-byte characters count as several): use fewer subject template components "
            "or shorter names."
        )
    elif size >= NEAR_SUBJECT_LIMIT:
        warning = (
            f"google.subject is {size} bytes, near GCP's {GCP_SUBJECT_LIMIT}-byte limit: a "
            "longer team, environment or agent name would be refused."
        )
    return check, warning


def _foreign_claims(expressions: Mapping[str, str]) -> list[str]:
    """Warnings for mappings that read claims federation tokens never carry."""
    warnings = []
    for key, expression in expressions.items():
        foreign = sorted(
            name
            for root, name in gcp_cel.references(expression)
            if root == "assertion" and name not in CLAIMS_SUPPORTED
        )
        for name in foreign:
            warnings.append(
                f"{key} is mapped from assertion.{name}, a claim federation tokens do not "
                f"carry (they carry {', '.join(CLAIMS_SUPPORTED)})."
            )
    return warnings


def _unconstrained(condition: str, mapped: Mapped) -> list[str]:
    claims: set[str] = set()
    for root, name in gcp_cel.references(condition):
        if root == "assertion":
            claims.add(name)
        elif root == "google":
            claims |= mapped.claims_behind(f"google.{name}")
        else:
            claims |= mapped.claims_behind(f"{ATTRIBUTE_PREFIX}{name}")
    if claims & IDENTIFYING_CLAIMS:
        return []
    return [
        "The attribute condition constrains neither the subject nor the team "
        "(assertion.sub, assertion.teams, or attributes mapped from them): every "
        "workload of the issuer that passes it is admitted."
    ]


_STARTS_WITH = re.compile(
    r"(?<!!)\b(assertion\.sub|google\.subject)\s*\.\s*startsWith\(\s*"
    r"(?:'([^'\\]*)'|\"([^\"\\]*)\")\s*\)"
)


def _prefix_traps(condition: str) -> list[str]:
    """Warnings for ``startsWith`` on the subject with a prefix that stops inside a
    component (:mod:`federation.policy.prefixes`); a negated one only over-excludes."""
    warnings = []
    for found in _STARTS_WITH.finditer(condition):
        prefix = found.group(2) if found.group(2) is not None else found.group(3)
        if open_ended(prefix):
            warnings.append(
                f"The attribute condition's {found.group(1)}.startsWith({prefix!r}): "
                f"{explain(prefix)}."
            )
    return warnings


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return sum(_size(item) for item in value)
    return len(str(value).encode())


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else f"{text}."
