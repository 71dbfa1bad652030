"""Token lifetimes: the ``2h30m`` grammar and the policy that bounds them.

Grammar: an hours, a minutes and a seconds part, each optional, each at most once and
in that order (``15m``, ``1h``, ``2h30m``, ``90s``, ``1h30m15s``). The API also takes
whole seconds. Below the minimum is refused; above the maximum is capped, and the
caller learns what it got from ``expires_at``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from federation.errors import InvalidRequest

# [0-9], not \d: \d would also take non-ASCII digits, such as Arabic-Indic ones.
_GRAMMAR = re.compile(r"(?:(?P<h>[0-9]{1,6})h)?(?:(?P<m>[0-9]{1,7})m)?(?:(?P<s>[0-9]{1,9})s)?")


def parse_duration(text: str) -> int:
    """Seconds in ``text``; :class:`InvalidRequest` when it is not of the grammar."""
    match = _GRAMMAR.fullmatch(text.strip()) if len(text) <= 32 else None
    if match is None or not any(match.groups()):
        # NOTE: the value is not echoed: whatever was sent may be a misplaced secret.
        raise InvalidRequest(
            "duration is not valid: use hours, minutes and seconds in that order, such "
            "as 15m, 1h, 2h30m or 90s"
        )
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: int) -> str:
    """The shortest grammar form of ``seconds`` (``5400`` → ``1h30m``)."""
    if seconds <= 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s"))]
    return "".join(part for part in parts if not part.startswith("0"))


@dataclass(frozen=True)
class Grant:
    """What a request gets: ``seconds`` of lifetime, and whether it was capped."""

    seconds: int
    requested: int
    capped: bool


@dataclass(frozen=True)
class DurationPolicy:
    """Default, minimum and maximum token lifetimes, in seconds."""

    default: int = 3600
    minimum: int = 60
    maximum: int = 3 * 3600

    def __post_init__(self) -> None:
        if not 0 < self.minimum <= self.default <= self.maximum:
            raise ValueError(
                "durations must satisfy 0 < minimum <= default <= maximum, got "
                f"{self.minimum}s, {self.default}s, {self.maximum}s"
            )

    def grant(self, requested: int | None) -> Grant:
        """Bound a requested lifetime in seconds (``None`` takes the default)."""
        wanted = self.default if requested is None else requested
        if wanted < self.minimum:
            raise InvalidRequest(
                f"duration {format_duration(wanted)} is below the minimum of "
                f"{format_duration(self.minimum)}"
            )
        if wanted > self.maximum:
            return Grant(seconds=self.maximum, requested=wanted, capped=True)
        return Grant(seconds=wanted, requested=wanted, capped=False)
