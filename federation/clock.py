"""The clock seam: everything that reads the time takes a :class:`Clock`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


@runtime_checkable
class Timestamps(Protocol):
    """A clock that also reads the time as seconds since the epoch, with no datetime."""

    def timestamp(self) -> float:
        """Exactly ``now().timestamp()``, read more cheaply."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (tests, dry runs)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def timestamp(self) -> float:
        return self._now.timestamp()

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)


def seconds(clock: Clock) -> Callable[[], float]:
    """A function that reads ``clock`` as seconds since the epoch: its ``timestamp``
    method when it has one (a datetime per read costs as much as the rest of a token's
    claims), else ``now().timestamp()``."""
    if type(clock) is SystemClock:
        return time.time  # NOTE: not the bound method: one call less per token
    if isinstance(clock, Timestamps):
        return clock.timestamp
    return lambda: clock.now().timestamp()
