"""A role trust policy document, parsed into statements and conditions.

What IAM would refuse to save (a ``Version`` other than 2012-10-17 or 2008-10-17, an
empty ``Statement``, an ``Effect`` other than ``Allow``/``Deny`` (case-sensitive), an
unknown or wrongly cased condition operator, a statement without ``Action`` or
``NotAction``, a ``Resource`` in a trust policy...) raises :class:`MalformedPolicy`, so
the tester can say that the policy cannot exist as written rather than guess how it
would evaluate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from federation.policy.aws_conditions import Operator, parse_operator

VARIABLES_VERSION = "2012-10-17"
VERSIONS = (VARIABLES_VERSION, "2008-10-17")  # the only two IAM knows
_ARN = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):oidc-provider/(.+)")


class MalformedPolicy(ValueError):
    """IAM would refuse this document (MalformedPolicyDocument)."""


@dataclass(frozen=True)
class Condition:
    """One operator applied to one key, with the policy's values (as written)."""

    operator: Operator
    key: str
    values: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.operator.name} {self.key}"


@dataclass(frozen=True)
class Principal:
    """The statement's ``Principal``: ``everyone`` for ``"*"``, else the federated ARNs
    (``others`` records AWS/Service principals, which never match a web identity)."""

    everyone: bool = False
    federated: tuple[str, ...] = ()
    others: tuple[str, ...] = ()


@dataclass(frozen=True)
class Statement:
    index: int  # 1-based, as people count statements
    sid: str | None
    effect: str  # "Allow" or "Deny"
    principal: Principal
    actions: tuple[str, ...]
    not_action: bool
    conditions: tuple[Condition, ...]

    @property
    def label(self) -> str:
        return f"statement {self.index}" + (f" (Sid {self.sid})" if self.sid else "")

    @property
    def allows(self) -> bool:
        return self.effect == "Allow"

    def covers(self, action: str) -> bool:
        """Whether ``Action`` (or ``NotAction``) applies the statement to ``action``."""
        listed = any(action_matches(pattern, action) for pattern in self.actions)
        return not listed if self.not_action else listed


@dataclass(frozen=True)
class Document:
    statements: tuple[Statement, ...]
    variables: bool  # policy variables are substituted only in version 2012-10-17


@lru_cache(maxsize=256)
def _action_regex(pattern: str) -> re.Pattern[str]:
    body = "".join(
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern.lower()
    )
    return re.compile(body, re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """IAM's action match: ``*`` and ``?`` wildcards, case-insensitive."""
    return _action_regex(pattern).fullmatch(action.lower()) is not None


def provider_arn_parts(arn: str) -> tuple[str, str, str] | None:
    """(partition, account, provider name) of an OIDC provider ARN."""
    found = _ARN.fullmatch(arn)
    return (found.group(1), found.group(2), found.group(3)) if found else None


def parse(document: Mapping[str, Any]) -> Document:
    if not isinstance(document, Mapping):
        raise MalformedPolicy("the trust policy must be a JSON object")
    raw = document.get("Statement")
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise MalformedPolicy("the trust policy has no Statement")
    version = document.get("Version", "2008-10-17")  # NOTE: IAM's default when absent
    if version not in VERSIONS:
        raise MalformedPolicy(f"Version {version!r} is not one of {', '.join(VERSIONS)}")
    statements = tuple(_statement(index, item) for index, item in enumerate(raw, start=1))
    return Document(statements, version == VARIABLES_VERSION)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise MalformedPolicy(f"{where} must be a string or a list of strings")
    return tuple(items)


def _statement(index: int, raw: Any) -> Statement:
    where = f"statement {index}"
    if not isinstance(raw, Mapping):
        raise MalformedPolicy(f"{where} is not a JSON object")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicy(f"{where} has Effect {effect!r}; it must be Allow or Deny")
    if "Resource" in raw or "NotResource" in raw:
        raise MalformedPolicy(f"{where} has a Resource element, which a trust policy may not have")
    if "NotPrincipal" in raw:
        raise MalformedPolicy(f"{where} uses NotPrincipal, which a role trust policy may not have")
    if ("Action" in raw) == ("NotAction" in raw):
        raise MalformedPolicy(f"{where} needs exactly one of Action and NotAction")
    not_action = "NotAction" in raw
    actions = _strings(raw["NotAction" if not_action else "Action"], f"{where} Action")
    sid = raw.get("Sid")
    return Statement(
        index=index,
        sid=sid if isinstance(sid, str) and sid else None,
        effect=effect,
        principal=_principal(raw.get("Principal"), where),
        actions=actions,
        not_action=not_action,
        conditions=_conditions(raw.get("Condition"), where),
    )


def _principal(raw: Any, where: str) -> Principal:
    if raw is None:
        raise MalformedPolicy(f"{where} has no Principal; a trust policy statement needs one")
    if raw == "*":
        return Principal(everyone=True)
    if not isinstance(raw, Mapping) or not raw:
        raise MalformedPolicy(f"{where} has a Principal that is neither '*' nor an object")
    federated: tuple[str, ...] = ()
    others: list[str] = []
    everyone = False
    for kind, value in raw.items():
        names = _strings(value, f"{where} Principal.{kind}")
        if kind == "Federated":
            federated = names
        elif kind == "AWS" and "*" in names:
            everyone = True  # AWS documents {"AWS": "*"} as the same as "*"
        else:
            others.extend(f"{kind}:{name}" for name in names)
    return Principal(everyone, federated, tuple(others))


def _conditions(raw: Any, where: str) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise MalformedPolicy(f"{where} has a Condition that is not an object")
    found: list[Condition] = []
    for name, block in raw.items():
        operator = parse_operator(name)
        if operator is None:
            raise MalformedPolicy(f"unknown condition operator {name!r} in {where}")
        if not isinstance(block, Mapping) or not block:
            raise MalformedPolicy(f"{where}: {name} must map condition keys to values")
        for key, value in block.items():
            values = _values(value, f"{where}: {name} {key}")
            if operator.base == "Null" and any(v.lower() not in ("true", "false") for v in values):
                raise MalformedPolicy(f"{where}: Null takes 'true' or 'false', not {values!r}")
            found.append(Condition(operator, key, values))
    return tuple(found)


def _values(raw: Any, where: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    values: list[str] = []
    for item in items:
        if isinstance(item, bool):
            values.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            values.append(str(item))
        else:
            raise MalformedPolicy(f"{where} has a value that is not a string, number or boolean")
    return tuple(values)
