"""The token audit log: what was issued, and what a key change affects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federation.store.models import IssuedToken


@dataclass(frozen=True)
class Outstanding:
    """Unexpired tokens signed by one key."""

    count: int
    last_expiry: datetime | None


def outstanding(session: Session, kid: str, now: datetime) -> Outstanding:
    count, last = session.execute(
        select(func.count(IssuedToken.seq), func.max(IssuedToken.expires_at)).where(
            IssuedToken.kid == kid, IssuedToken.expires_at > now
        )
    ).one()
    return Outstanding(count=int(count), last_expiry=_aware(last))


def _aware(value: datetime | None) -> datetime | None:
    # Aggregates bypass the column type, so SQLite returns naive UTC (or text).
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
