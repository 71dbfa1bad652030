"""Rates, as the rate-limit settings write them: ``20/s,burst=40``, ``60/m``, ``off``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

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
