"""The token bucket: a rate, a burst, what one take decides, and the backend protocol.

A bucket holds up to ``burst`` tokens and gains ``per_second`` tokens a second. A
request takes one; an empty bucket refuses it and says when the next token is due.
A bucket that has refilled is the same as no bucket at all, so backends keep only the
buckets that are short of tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from federation.domain.rates import Rate


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
