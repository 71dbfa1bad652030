"""Signing-key lifecycle, derived from timestamps rather than stored as state.

Each key is ``next`` (published, not yet signing), ``active`` (signing), ``retired``
(published so that the tokens it signed still verify) or ``removed``. A key records
when it was created, when it starts signing and, if it was stopped or revoked early,
when. Everything else follows from the clock, so no process has to be awake at the
moment a key changes state:

- a key is ``next`` until ``activates_at``: a rotation publishes the new key at least
  one JWKS cache lifetime before anything is signed with it;
- it is ``active`` from then until a newer key of its algorithm activates (or until
  ``retired_at``), and only the newest active key of an algorithm signs;
- it is ``retired`` for the verification window (the longest token lifetime plus
  clock leeway) after that, so that no token fails verification because of a rotation;
- it is ``removed`` afterwards, or as soon as it is revoked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class KeyState(StrEnum):
    NEXT = "next"
    ACTIVE = "active"
    RETIRED = "retired"
    REMOVED = "removed"


PUBLISHED = frozenset({KeyState.NEXT, KeyState.ACTIVE, KeyState.RETIRED})


@dataclass(frozen=True)
class KeyRecord:
    """A key's identity and the times that decide its state."""

    kid: str
    alg: str
    created_at: datetime
    activates_at: datetime
    retired_at: datetime | None = None
    revoked_at: datetime | None = None
    location: str = ""  # where the private key lives: a file, the database, a KMS key


@dataclass(frozen=True)
class KeyStatus:
    """A key's state at one moment, with the time it stopped (or stops) signing."""

    record: KeyRecord
    state: KeyState
    retires_at: datetime | None
    removed_at: datetime | None


def statuses(
    records: Iterable[KeyRecord], now: datetime, verification_window: timedelta
) -> list[KeyStatus]:
    """The state of every key at ``now``, newest first."""
    ordered = sorted(records, key=lambda r: (r.activates_at, r.created_at), reverse=True)
    result: list[KeyStatus] = []
    for record in ordered:
        superseded = [
            other.activates_at
            for other in ordered
            if other.alg == record.alg
            and other.activates_at > record.activates_at
            and other.activates_at <= now
        ]
        ends = [t for t in (record.retired_at, min(superseded, default=None)) if t is not None]
        retires_at = min(ends, default=None)
        removed_at = retires_at + verification_window if retires_at is not None else None
        if record.revoked_at is not None and record.revoked_at <= now:
            removed_at = (
                record.revoked_at if removed_at is None else min(removed_at, record.revoked_at)
            )
        result.append(
            KeyStatus(
                record=record,
                state=_state(record, now, retires_at, removed_at),
                retires_at=retires_at,
                removed_at=removed_at,
            )
        )
    return result


def _state(
    record: KeyRecord, now: datetime, retires_at: datetime | None, removed_at: datetime | None
) -> KeyState:
    if removed_at is not None and now >= removed_at:
        return KeyState.REMOVED
    if now < record.activates_at:
        return KeyState.NEXT
    if retires_at is not None and now >= retires_at:
        return KeyState.RETIRED
    return KeyState.ACTIVE


def changed(
    record: KeyRecord,
    activates_at: datetime | None = None,
    retired_at: datetime | None = None,
    revoked_at: datetime | None = None,
) -> KeyRecord:
    """``record`` with the times given set (``None``: unchanged)."""
    return replace(
        record,
        activates_at=activates_at or record.activates_at,
        retired_at=retired_at or record.retired_at,
        revoked_at=revoked_at or record.revoked_at,
    )
