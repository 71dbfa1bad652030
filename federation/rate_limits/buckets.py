"""The token bucket: a rate, a burst, what one take decides, and the backend protocol.

A bucket holds up to ``burst`` tokens and gains ``per_second`` tokens a second. A
request takes one; an empty bucket refuses it and says when the next token is due.
A bucket that has refilled is the same as no bucket at all, so backends keep only the
buckets that are short of tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

Unit = Literal["s", "m", "h"]
_UNIT_SECONDS: dict[Unit, int] = {"s": 1, "m": 60, "h": 3600}
_UNIT_NAMES: dict[str, Unit] = {
    "s": "s",
    "sec": "s",
    "second": "s",
    "m": "m",
    "min": "m",
    "minute": "m",
    "h": "h",
    "hour": "h",
}
_RATE = re.compile(
    r"(?P<count>[0-9]+(?:\.[0-9]+)?)\s*/\s*(?P<unit>[a-z]+)"
    r"(?:\s*,\s*burst\s*=\s*(?P<burst>[0-9]+))?"
)
_MAX = 1_000_000
OFF = "off"


@dataclass(frozen=True)
class Rate:
    """``count`` tokens per ``unit``, and at most ``burst`` at once: ``20/s,burst=40``."""

    count: float
    unit: Unit
    burst: int

    def __post_init__(self) -> None:
        if not 0 < self.count <= _MAX or not 1 <= self.burst <= _MAX:
            raise ValueError(
                f"a rate is above 0 and a burst at least 1, both at most {_MAX:,}, not {self}"
            )

    @property
    def per_second(self) -> float:
        return self.count / _UNIT_SECONDS[self.unit]

    def __str__(self) -> str:
        return f"{self.count:g}/{self.unit},burst={self.burst}"


def parse_rate(text: str) -> Rate | None:
    """``20/s,burst=40``, ``60/m`` (burst: one unit's count, at least 1), or ``off``."""
    cleaned = text.strip().lower()
    if cleaned == OFF:
        return None
    match = _RATE.fullmatch(cleaned)
    unit = _UNIT_NAMES.get(match.group("unit")) if match else None
    if match is None or unit is None:
        raise ValueError(
            "write a rate as COUNT/UNIT with an optional burst, such as '20/s,burst=40' "
            "or '60/m' (units s, m, h), or 'off'"
        )
    count = float(match.group("count"))
    burst = match.group("burst")
    return Rate(count, unit, int(burst) if burst else max(1, int(count)))


@dataclass(frozen=True)
class Decision:
    """What one take decided; ``retry_after``: seconds until a token is due (0 if allowed)."""

    allowed: bool
    retry_after: float = 0.0


ALLOWED = Decision(allowed=True)


class Buckets(Protocol):
    """Token buckets by key: in this process, or shared by every replica."""

    def take(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        """Refill ``key``'s bucket at ``rate``; if it holds a token, take ``cost`` tokens
        (``0`` only looks) and allow, else refuse."""
        ...


def refilled(tokens: float, stamp: float, now: float, rate: Rate) -> tuple[float, float]:
    """A bucket's tokens and time stamp at ``now``; time never runs backwards here, so a
    clock that steps back (or a replica whose clock lags) adds no tokens."""
    if now <= stamp:
        return tokens, stamp
    return min(float(rate.burst), tokens + (now - stamp) * rate.per_second), now


def taken(tokens: float, rate: Rate, cost: int) -> tuple[Decision, float]:
    """The decision on a refilled bucket, and the tokens left."""
    if tokens >= 1:
        return ALLOWED, tokens - cost
    return Decision(allowed=False, retry_after=(1 - tokens) / rate.per_second), tokens
