"""Would AWS STS let this token assume the role? ``AssumeRoleWithWebIdentity``, offline.

STS checks, in this order as far as its errors show: the token's issuer has an IAM OIDC
provider (``No OpenIDConnect provider found``), its audience is one of the provider's
client IDs (``Incorrect token audience``), it has not expired (``Token expired``); then
the role's trust policy decides, the caller being the web identity itself: a matching
``Deny`` statement refuses, otherwise some ``Allow`` statement must match
``Principal.Federated`` (the provider's ARN), ``Action`` and every condition. A token
with session tags needs ``sts:TagSession`` allowed as well (and one with a source
identity ``sts:SetSourceIdentity``), each evaluated like the main action.

A trust policy IAM would refuse to save raises
:class:`~federation.policy.result.InvalidPolicy` (``MalformedPolicyDocument``) rather
than answering a decision. Every comparison is returned as a
:class:`~federation.policy.result.Check`, the reason names the first thing that
refuses, and warnings point at the usual foot-guns
(:mod:`federation.policy.aws_warnings`). What the tester cannot see (SCPs, RCPs,
permissions boundaries, keys such as ``aws:SourceIp``) is out of scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federation.errors import InvalidPolicy, InvalidRequest
from federation.policy import aws_conditions as conditions
from federation.policy import aws_token
from federation.policy.aws_context import (
    MalformedToken,
    RequestContext,
    build,
)
from federation.policy.aws_document import (
    Condition,
    Document,
    MalformedPolicy,
    Statement,
    parse,
    provider_arn_parts,
)
from federation.policy.aws_token import Provider
from federation.policy.aws_warnings import ARWWI, lint
from federation.policy.result import Check, Evaluation, allow, deny

__all__ = ["evaluate", "evaluate_trust", "suggest"]

TAG_SESSION = "sts:TagSession"
SET_SOURCE_IDENTITY = "sts:SetSourceIdentity"
DEFAULT_CLIENT_IDS = ("sts.amazonaws.com",)


@dataclass(frozen=True)
class _Verdict:
    """How the trust policy answers for one action."""

    action: str
    allowed: bool
    reason: str
    checks: tuple[Check, ...]
    denied_explicitly: bool = False


def evaluate(
    trust_policy: Mapping[str, Any],
    claims: Mapping[str, Any],
    *,
    provider_arn: str | None = None,
    client_ids: Sequence[str] | None = DEFAULT_CLIENT_IDS,
    now: datetime | None = None,
) -> Evaluation:
    """Evaluate ``trust_policy`` for ``claims`` as STS would for AssumeRoleWithWebIdentity.

    ``provider_arn`` is the IAM OIDC provider the role trusts (None: any account's
    provider for the token's issuer); ``client_ids`` its audiences (None: not checked).
    """
    checks: list[Check] = []
    refusals: list[str] = []
    warnings: list[str] = []
    document = _parsed(trust_policy)
    provider = aws_token.provider(claims, provider_arn, checks, refusals, warnings)
    if provider is None:
        return deny(refusals[0], checks, warnings)
    aws_token.audience(claims, client_ids, checks, refusals)
    aws_token.expiry(claims, now, checks, refusals, warnings)
    return _decide(document, claims, provider, now, checks, refusals, warnings)


def evaluate_trust(
    trust_policy: Mapping[str, Any],
    claims: Mapping[str, Any],
    *,
    provider_arn: str,
    now: datetime | None = None,
) -> Evaluation:
    """The trust policy's decision alone, for a token already matched to the IAM OIDC
    provider ``provider_arn``: what :func:`evaluate` decides after STS's checks of the
    token (issuer, audience, expiry), which the caller has made. The local STS stand-in
    uses it, so that it and the tester decide trust with one set of rules; it may serve a
    provider on plain http, which ``iss`` could not match with ``https://``."""
    document = _parsed(trust_policy)
    parts = provider_arn_parts(provider_arn)
    if parts is None:
        raise InvalidRequest(f"not an IAM OIDC provider ARN: {provider_arn!r}")
    return _decide(document, claims, Provider(parts[2], provider_arn), now, [], [], [])


def _parsed(trust_policy: Mapping[str, Any]) -> Document:
    try:
        return parse(trust_policy)
    except MalformedPolicy as exc:
        raise InvalidPolicy("MalformedPolicyDocument", str(exc)) from None


def _decide(
    document: Document,
    claims: Mapping[str, Any],
    provider: Provider,
    now: datetime | None,
    checks: list[Check],
    refusals: list[str],
    warnings: list[str],
) -> Evaluation:
    """The trust policy's verdicts for the token's actions, after the token checks
    (whose ``checks``, ``refusals`` and ``warnings`` are carried on)."""
    try:
        context = build(provider.name, claims, now)
    except MalformedToken as exc:
        refusals.append(f"STS refuses the token: {exc}")
        checks.append(Check("token: session tags", False, note=str(exc)))
        return deny(refusals[0], checks, warnings)
    checks.append(
        Check(
            "token: request context",
            True,
            {"keys": context.describe()},
            "the condition keys STS builds from the token and the time; no other claim is a key",
        )
    )
    sub = claims.get("sub")
    warnings.extend(lint(document.statements, context, sub if isinstance(sub, str) else None))
    verdicts = [_authorize(ARWWI, document, context, provider)]
    if context.tags:
        verdicts.append(_authorize(TAG_SESSION, document, context, provider))
    if context.source_identity:
        verdicts.append(_authorize(SET_SOURCE_IDENTITY, document, context, provider))
    for verdict in verdicts:
        checks.extend(verdict.checks)
        if verdict.allowed:
            continue
        refusals.append(_extra_reason(verdict, context))
        if verdict.action == TAG_SESSION and not _any_allow_covers(document, provider, TAG_SESSION):
            warnings.append(
                f"the token carries session tags ({', '.join(context.tags)}), so the trust "
                f"policy must also allow {TAG_SESSION}: add it to the Action of the statement "
                f"that allows {ARWWI}"
            )
    if refusals:
        return deny(refusals[0], checks, warnings)
    reason = verdicts[0].reason + "".join(
        f"; {verdict.action} {verdict.reason}" for verdict in verdicts[1:]
    )
    return allow(reason, checks, warnings)


def suggest(
    subject: str,
    *,
    provider_arn: str,
    audience: str = "sts.amazonaws.com",
    session_tags: bool = False,
) -> dict[str, Any]:
    """The narrowest trust policy admitting exactly ``subject`` with ``audience``."""
    parts = provider_arn_parts(provider_arn)
    if parts is None:
        raise InvalidRequest(
            "provider_arn must be an IAM OIDC provider ARN, "
            "arn:aws:iam::<account>:oidc-provider/<host>[/<path>]"
        )
    if not subject or not audience:
        raise InvalidRequest("a trust policy needs a subject and an audience")
    name = parts[2]
    action: str | list[str] = [ARWWI, TAG_SESSION] if session_tags else ARWWI
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": action,
                "Condition": {
                    "StringEquals": {
                        f"{name}:aud": _literal(audience),
                        f"{name}:sub": _literal(subject),
                    }
                },
            }
        ],
    }


def _literal(value: str) -> str:
    # NOTE: in version 2012-10-17 `${...}` is a policy variable even in StringEquals;
    # `${$}` is IAM's escape for a literal `$`.
    return value.replace("$", "${$}") if "${" in value else value


def _authorize(
    action: str, document: Document, context: RequestContext, provider: Provider
) -> _Verdict:
    prefix = "" if action == ARWWI else f"{action}: "
    checks: list[Check] = []
    applying: list[Statement] = []
    first_failure: dict[int, str] = {}
    for statement in document.statements:
        name = f"{prefix}{statement.label}"
        trusted = _trusts(statement, provider)
        checks.append(
            Check(
                f"{name}: Principal.Federated",
                trusted,
                {
                    "token": provider.arn or _any_account(provider),
                    "policy": _principals(statement),
                },
            )
        )
        covered = statement.covers(action)
        element = "NotAction" if statement.not_action else "Action"
        checks.append(
            Check(
                f"{name}: {element}",
                covered,
                {"action": action, "policy": list(statement.actions)},
            )
        )
        held = True
        for condition in statement.conditions:
            outcome = _condition(condition, document, context)
            checks.append(
                Check(
                    f"{name}: {condition.label}",
                    outcome.passed,
                    {
                        "key": condition.key,
                        "token": list(context.lookup(condition.key) or ()),
                        "policy": list(condition.values),
                    },
                    outcome.note,
                )
            )
            if not outcome.passed and held:
                held = False
                first_failure[statement.index] = (
                    f"statement {statement.index} fails {condition.label} ({outcome.note})"
                )
        if trusted and covered and held:
            applying.append(statement)
    denying = [statement for statement in applying if not statement.allows]
    if denying:
        reason = f"explicitly denied by {denying[0].label}: a matching Deny overrides every Allow"
        return _Verdict(action, False, reason, tuple(checks), denied_explicitly=True)
    if applying:
        count = len(applying[0].conditions)
        matched = f"{count} condition{'s' if count != 1 else ''}" if count else "no conditions"
        reason = f"allowed by {applying[0].label}: Principal.Federated, Action and {matched} match"
        return _Verdict(action, True, reason, tuple(checks))
    detail = _closest(action, document, provider, first_failure)
    return _Verdict(action, False, f"no statement allows {action}: {detail}", tuple(checks))


def _closest(action: str, document: Document, provider: Provider, failures: dict[int, str]) -> str:
    """Why the most promising Allow statement does not apply."""
    trusting = [s for s in document.statements if s.allows and _trusts(s, provider)]
    if not trusting:
        named = sorted(
            {arn for s in document.statements if s.allows for arn in s.principal.federated}
        )
        listed = f" (the policy names {', '.join(named)})" if named else ""
        if provider.arn:
            return f"no Allow statement's Principal.Federated is {provider.arn}{listed}"
        return (
            "no Allow statement's Principal.Federated names an OIDC provider for "
            f"{provider.name}{listed}"
        )
    covering = [s for s in trusting if s.covers(action)]
    if not covering:
        return f"every Allow statement that trusts the provider leaves {action} out of its Action"
    return failures.get(covering[0].index, f"statement {covering[0].index} does not apply")


def _any_account(provider: Provider) -> str:
    return f"arn:aws:iam::<any account>:oidc-provider/{provider.name}"


def _principals(statement: Statement) -> list[str]:
    principal = statement.principal
    return ["*"] if principal.everyone else [*principal.federated, *principal.others]


def _any_allow_covers(document: Document, provider: Provider, action: str) -> bool:
    return any(s.allows and _trusts(s, provider) and s.covers(action) for s in document.statements)


def _trusts(statement: Statement, provider: Provider) -> bool:
    principal = statement.principal
    if principal.everyone:
        return True
    if provider.arn is not None:
        return provider.arn in principal.federated
    for arn in principal.federated:
        parts = provider_arn_parts(arn)
        if parts is not None and parts[2] == provider.name:
            return True
    return False


def _condition(
    condition: Condition, document: Document, context: RequestContext
) -> conditions.Outcome:
    request = context.lookup(condition.key)
    operator = condition.operator
    if not operator.supported and request:
        return conditions.Outcome(False, f"the tester does not evaluate {operator.name}")
    values = [
        conditions.resolve(value, context.lookup, variables=document.variables)
        for value in condition.values
    ]
    outcome = conditions.evaluate(operator, request, values)
    if not outcome.passed and request and operator.base != "Null":
        return conditions.Outcome(False, f"{outcome.note} {list(condition.values)}")
    return outcome


def _extra_reason(verdict: _Verdict, context: RequestContext) -> str:
    if verdict.action == TAG_SESSION:
        tags = ", ".join(context.tags)
        cause = f"the token carries session tags ({tags}), which need {TAG_SESSION}"
    elif verdict.action == SET_SOURCE_IDENTITY:
        cause = f"the token carries a source identity, which needs {SET_SOURCE_IDENTITY}"
    else:
        return verdict.reason
    if verdict.denied_explicitly:
        return f"{cause}, and {verdict.action} is {verdict.reason}"
    return f"{cause}, and {verdict.reason}"
