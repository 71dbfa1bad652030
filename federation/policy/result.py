"""What an evaluation answers: a decision, the reason, every check made, warnings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Decision(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True)
class Check:
    """One comparison the cloud would make: what, whether it held, with which values."""

    what: str  # e.g. "statement 1: StringLike token.example.com:sub"
    passed: bool
    compared: dict[str, Any] = field(default_factory=dict)  # e.g. {"value": ..., "pattern": ...}
    note: str = ""  # why it held or failed, in words

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"what": self.what, "passed": self.passed}
        if self.compared:
            found["compared"] = self.compared
        if self.note:
            found["note"] = self.note
        return found


@dataclass(frozen=True)
class Evaluation:
    """The outcome for one token against one policy."""

    decision: Decision
    reason: str  # one sentence: why allowed, or the first thing that refuses
    checks: tuple[Check, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    def explain(self) -> list[str]:
        """The evaluation for people: the decision and reason, each check, warnings."""
        lines = [f"{self.decision.value.upper()}: {self.reason}", "", "checks:"]
        for check in self.checks:
            mark = "pass" if check.passed else "FAIL"
            lines.append(f"  {mark}  {check.what}")
            lines += [
                f"          {name}: {_shown(value)}" for name, value in check.compared.items()
            ]
            if check.note:
                lines.append(f"          -> {check.note}")
        if self.warnings:
            lines += ["", "warnings:"]
            lines += [f"  - {warning}" for warning in self.warnings]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "reason": self.reason,
            "checks": [check.to_dict() for check in self.checks],
            "warnings": list(self.warnings),
        }


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)


def allow(reason: str, checks: Sequence[Check], warnings: Sequence[str] = ()) -> Evaluation:
    return Evaluation(Decision.ALLOW, reason, tuple(checks), tuple(warnings))


def deny(reason: str, checks: Sequence[Check], warnings: Sequence[str] = ()) -> Evaluation:
    return Evaluation(Decision.DENY, reason, tuple(checks), tuple(warnings))
