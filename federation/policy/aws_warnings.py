"""The foot-guns of web identity trust policies, found before anyone is locked out or in.

Each warning names the statement and says what to write instead. They come from what
users trip over: ``ForAllValues`` in an Allow (true on a missing key), a ``:sub``
pattern that admits every subject, or whose ``*`` stops inside a component
(:mod:`federation.policy.prefixes`), conditions on claims AWS never exposes, keys of
another provider (or with ``https://``), a missing ``:aud`` condition, ``*`` in a
``StringEquals``, a subject pattern copied from another CI system.

What counts as a condition on ``:sub`` (or ``:aud``): any operator but ``Null`` on the
key. A positive one (``StringEquals``, ``StringLike``...) is an allow-list; a negated
one (``StringNotEquals``, ``StringNotLike``...) still constrains the key, but as a
deny-list that admits every subject it does not name, which gets a warning of its own.
``Null`` only tests presence, which every token satisfies, so it constrains nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from federation.domain.subjects import COMPONENTS
from federation.policy.aws_conditions import Chunk, glob_matches
from federation.policy.aws_context import CLAIM_KEYS, KeyKind, RequestContext
from federation.policy.aws_document import Condition, Statement
from federation.policy.prefixes import explain, glob_trap

_SHAPES = (*COMPONENTS, "user", "service_account")
_FOREIGN = {
    "repo": "a GitHub Actions subject (repo:<owner>/<repo>:...)",
    "project_path": "a GitLab CI subject (project_path:...)",
    "organization": "a Buildkite or HCP Terraform subject (organization:...)",
    "system": "a Kubernetes service account subject (system:serviceaccount:...)",
    "spiffe": "a SPIFFE ID",
    "org": "a CircleCI subject (org/<id>/project/...)",
}
_LEADING_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)[:/]")
ARWWI = "sts:AssumeRoleWithWebIdentity"


def broad(pattern: str) -> bool:
    """Whether a ``:sub`` pattern pins nothing: ``*``, or ``<component>:*``."""
    if not pattern.strip("*?"):
        return True
    name, colon, rest = pattern.partition(":")
    return bool(colon) and name in _SHAPES and not rest.strip("*?")


def foreign_shape(pattern: str, *, ignore_case: bool = False) -> str | None:
    """What a subject pattern was written for, when it is not one of our shapes."""
    found = _LEADING_NAME.match(pattern)
    if not found:
        return None
    name = found.group(1)
    if name in _SHAPES or (ignore_case and name.lower() in _SHAPES):
        return None
    if name.lower() in _SHAPES:
        return (
            f"spells this issuer's component {name.lower()!r} in other case, and the "
            "comparison is case-sensitive"
        )
    shape = _FOREIGN.get(name.lower(), f"another issuer's subject ({name}:...)")
    return f"looks like {shape}, a shape this issuer never issues"


def lint(statements: Iterable[Statement], context: RequestContext, sample: str | None) -> list[str]:
    """Warnings about the policy, for this token's provider. ``sample`` is the token's
    subject, shown as what this issuer's subjects look like."""
    warnings: list[str] = []
    for statement in statements:
        warnings.extend(_statement(statement, context, sample))
    return list(dict.fromkeys(warnings))


def _statement(statement: Statement, context: RequestContext, sample: str | None) -> list[str]:
    found: list[str] = []
    name = statement.label
    provider = context.provider
    for condition in statement.conditions:
        found.extend(_key(condition, name, context))
        found.extend(_values(condition, name, context, sample))
        if statement.allows and condition.operator.qualifier == "ForAllValues":
            found.append(
                f"{name}: {condition.label} in an Allow holds when the key is missing or "
                "empty; AWS advises against ForAllValues with Allow (use ForAnyValue, or "
                "add a Null false condition on the key)"
            )
    for arn in statement.principal.federated:
        if "*" in arn or "?" in arn:
            found.append(
                f"{name}: Principal.Federated {arn!r} has a wildcard; IAM never matches part "
                "of a principal ARN with one: name the provider's ARN"
            )
        elif "://" in arn:
            found.append(
                f"{name}: Principal.Federated {arn!r} holds a URL scheme; a provider ARN "
                f"is arn:aws:iam::<account>:oidc-provider/{provider}"
            )
    if statement.principal.everyone:
        found.append(
            f"{name}: Principal '*' trusts everyone; name the provider in Principal.Federated"
        )
    if statement.allows and statement.covers(ARWWI):
        found.extend(_unconstrained(statement, provider))
    return found


def _unconstrained(statement: Statement, provider: str) -> list[str]:
    """Warnings for an Allow that leaves ``:aud`` or ``:sub`` open (see the module)."""
    found: list[str] = []
    name = statement.label
    allowing = _keys(statement, negated=False)
    constrained = allowing | _keys(statement, negated=True)
    if f"{provider}:aud".lower() not in constrained:
        found.append(
            f"{name} allows {ARWWI} without a condition on {provider}:aud: every "
            "audience among the provider's client IDs is accepted; add StringEquals "
            f'"{provider}:aud": "sts.amazonaws.com"'
        )
    sub = f"{provider}:sub".lower()
    if sub not in constrained:
        found.append(
            f"{name} has no condition on {provider}:sub, so it matches every subject of "
            "this issuer: add StringEquals or StringLike on the subject"
        )
    elif sub not in allowing:
        found.append(
            f"{name} constrains {provider}:sub only with a negated operator, a deny-list: "
            "every subject it does not name is admitted, new teams and principals "
            "included; allow the subjects you mean with StringEquals or StringLike"
        )
    return found


def _keys(statement: Statement, *, negated: bool) -> set[str]:
    """The keys the statement's conditions constrain, positively or negated."""
    return {
        condition.key.lower()
        for condition in statement.conditions
        if condition.operator.base != "Null" and condition.operator.negated == negated
    }


def _key(condition: Condition, name: str, context: RequestContext) -> list[str]:
    key = context.classify(condition.key)
    provider = context.provider
    if key.kind is KeyKind.IGNORED_CLAIM:
        return [
            f"{name}: {condition.key}: AWS does not turn the claim '{key.name}' into a "
            f"condition key (only {', '.join(CLAIM_KEYS)} for a generic OIDC provider); "
            "the key is never in the request, so this condition "
            + ("always holds" if condition.operator.negated else "never matches")
            + ": encode what you need in sub, or send it as a session tag"
        ]
    if key.kind is KeyKind.OTHER_PROVIDER:
        if condition.key.lower().startswith(("https://", "http://")):
            hint = "condition keys name the provider without https://"
        else:
            hint = "it belongs to another provider"
        return [
            f"{name}: {condition.key} is not a key of this token's provider ({provider}): "
            f"{hint}, so AWS leaves it absent; write {provider}:{key.name}"
        ]
    if key.kind is KeyKind.UNKNOWN:
        return [
            f"{name}: {condition.key} depends on the request, not on the token; the tester "
            "cannot see it and evaluates it as absent"
        ]
    if not condition.operator.supported:
        operator = condition.operator.name
        return [f"{name}: the tester does not evaluate {operator}; treated as not matching"]
    return []


def _meant_like(condition: Condition, context: RequestContext) -> bool:
    """Whether a wildcard in an equality operator's value reads as a pattern the token
    would match, yet fails literally: the author meant StringLike."""
    request = context.lookup(condition.key) or ()
    return any(
        ("*" in value or "?" in value)
        and value not in request
        and any(glob_matches((Chunk(value),), found) for found in request)
        for value in condition.values
    )


def _values(
    condition: Condition, name: str, context: RequestContext, sample: str | None
) -> list[str]:
    found: list[str] = []
    operator = condition.operator
    if operator.base in ("StringEquals", "StringEqualsIgnoreCase") and _meant_like(
        condition, context
    ):
        found.append(
            f"{name}: {condition.label} compares '*' and '?' literally, and as a pattern the "
            "value would match this token; use StringLike for a pattern"
        )
    if condition.key.lower() != f"{context.provider}:sub".lower() or operator.negated:
        return found
    for value in condition.values:
        if operator.like and broad(value):
            found.append(
                f"{name}: {condition.label} pattern {value!r} matches every subject of this "
                "issuer"
                + (" of that shape" if value.strip("*?") else "")
                + ": pin the team, principal or environment (e.g. 'scoped_principal:t1/*')"
            )
        elif operator.like and (prefix := glob_trap(value)) is not None:
            found.append(
                f"{name}: {condition.label} pattern {value!r}: {explain(prefix, wildcard='*')}"
            )
        shape = foreign_shape(value, ignore_case="IgnoreCase" in operator.base)
        if shape:
            like = f"; this issuer's subjects look like {sample!r}" if sample else ""
            found.append(f"{name}: {condition.label} value {value!r} {shape}{like}")
    return found
