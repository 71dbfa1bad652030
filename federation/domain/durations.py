"""Token lifetimes: one duration parser, its two grammars, and the policy that bounds
them.

The parser reads the grammar of the Rust ``humantime`` crate (2.1), which the Oz CLI's
``--duration`` takes: ``<number><unit>`` terms, optionally separated by whitespace
(``1h 30m``, ``2h30m``, ``30min``, ``1hour``, ``15days 2min 2s``), where a month is
30.44 days and a year 365.25 days. Sub-second units add nanoseconds; the total is cut
to whole seconds, as the Oz CLI does before it sends ``requestedDurationSeconds``.

- :func:`parse_human_duration` takes all of it: what the CLI's flags accept. Above
  2**31 - 1 seconds is refused, as the Oz CLI refuses what does not fit its i32.
- :func:`parse_duration` takes the canonical subset that the HTTP API and the settings
  accept: hours, minutes and seconds, each at most once, in that order, without spaces
  (``15m``, ``1h``, ``2h30m``, ``90s``, ``1h30m15s``).

Below the minimum is refused; above the maximum is capped, and the caller learns what
it got from ``expires_at``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from federation.errors import InvalidRequest

# The largest lifetime a request may name: the Oz client sends an i32 of seconds.
MAX_REQUEST_SECONDS = 2**31 - 1

_NANOS_PER_SECOND = 1_000_000_000
# humantime 2.1's units, with the number of nanoseconds each stands for.
_UNITS: dict[str, int] = {
    name: nanos
    for names, nanos in (
        (("nanos", "nsec", "ns"), 1),
        (("usec", "us"), 1_000),
        (("millis", "msec", "ms"), 1_000_000),
        (("seconds", "second", "secs", "sec", "s"), _NANOS_PER_SECOND),
        (("minutes", "minute", "min", "mins", "m"), 60 * _NANOS_PER_SECOND),
        (("hours", "hour", "hr", "hrs", "h"), 3600 * _NANOS_PER_SECOND),
        (("days", "day", "d"), 86_400 * _NANOS_PER_SECOND),
        (("weeks", "week", "w"), 7 * 86_400 * _NANOS_PER_SECOND),
        (("months", "month", "M"), 2_630_016 * _NANOS_PER_SECOND),  # 30.44 days
        (("years", "year", "y"), 31_557_600 * _NANOS_PER_SECOND),  # 365.25 days
    )
    for name in names
}
# What Rust's char::is_whitespace accepts (Unicode White_Space), as humantime does.
_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# [0-9], not \d: \d would also take non-ASCII digits, such as Arabic-Indic ones.
# humantime lets whitespace into a number ("1 0s" is ten seconds) and before its unit.
_TERM = re.compile(rf"([0-9][0-9{_SPACE}]*)([A-Za-z]+)")
_GAP = re.compile(rf"[{_SPACE}]*")
_HUMAN_MAX_LENGTH = 64
_HUMAN_FORM = (
    "duration is not valid: use numbers with units (ns, us, ms, s, m, h, d, w, M, y), "
    "such as 15m, 1h 30m, 2h30m or 1day"
)

# The canonical subset: its units in order, with the most digits each may have.
_CANONICAL_DIGITS = {"h": 6, "m": 7, "s": 9}
_CANONICAL_CHARACTERS = frozenset("0123456789hms")
_CANONICAL_MAX_LENGTH = 32
_CANONICAL_FORM = (
    "duration is not valid: use hours, minutes and seconds in that order, such as 15m, "
    "1h, 2h30m or 90s"
)


def _terms(text: str) -> list[tuple[str, str]] | None:
    """The ``(digits, unit)`` terms of ``text`` as humantime reads them, or ``None``."""
    position = _after_gap(text, 0)
    terms: list[tuple[str, str]] = []
    while position < len(text):
        term = _TERM.match(text, position)
        if term is None:
            return None
        terms.append(("".join(term[1].split()), term[2]))
        position = _after_gap(text, term.end())
    return terms or None


def _after_gap(text: str, position: int) -> int:
    gap = _GAP.match(text, position)
    return gap.end() if gap else position


def _seconds(terms: list[tuple[str, str]]) -> int:
    """Whole seconds: the nanoseconds of every term, summed, then cut."""
    return sum(int(digits) * _UNITS[unit] for digits, unit in terms) // _NANOS_PER_SECOND


def parse_human_duration(text: str) -> int:
    """Whole seconds in ``text``, of the Oz CLI's (humantime's) grammar; sub-second
    parts count and the total is cut to whole seconds. :class:`InvalidRequest` when it
    is not of the grammar or names more than :data:`MAX_REQUEST_SECONDS`."""
    terms = _terms(text) if len(text) <= _HUMAN_MAX_LENGTH else None
    if terms is None or any(unit not in _UNITS for _, unit in terms):
        # NOTE: the value is not echoed: whatever was sent may be a misplaced secret.
        raise InvalidRequest(_HUMAN_FORM)
    seconds = _seconds(terms)
    if seconds > MAX_REQUEST_SECONDS:
        raise InvalidRequest(
            f"duration is out of bounds: at most {MAX_REQUEST_SECONDS} seconds (about 68 years)"
        )
    return seconds


def parse_duration(text: str) -> int:
    """Seconds in ``text``, of the canonical grammar (``2h30m``) that the API and the
    settings take; :class:`InvalidRequest` when it is not."""
    stripped = text.strip()
    terms = (
        _terms(stripped)
        if len(text) <= _CANONICAL_MAX_LENGTH and set(stripped) <= _CANONICAL_CHARACTERS
        else None
    )
    units = [unit for _, unit in terms or ()]
    if (
        terms is None
        or units != [unit for unit in _CANONICAL_DIGITS if unit in units]  # in order, once
        or any(len(digits) > _CANONICAL_DIGITS[unit] for digits, unit in terms)
    ):
        # NOTE: the value is not echoed: whatever was sent may be a misplaced secret.
        raise InvalidRequest(_CANONICAL_FORM)
    return _seconds(terms)


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
