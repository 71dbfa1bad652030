"""The token audit log: what was issued, and what a key change affects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federation.store.models import IssuedToken
from federation.store.pagination import Page, PageRequest, paginate


def issued_tokens(
    session: Session,
    page: PageRequest,
    *,
    run_id: str | None = None,
    principal_uid: str | None = None,
    audience: str | None = None,
) -> Page[IssuedToken]:
    """One page of the issued tokens, newest first; each filter given must match exactly."""
    statement = select(IssuedToken)
    if run_id is not None:
        statement = statement.where(IssuedToken.run_id == run_id)
    if principal_uid is not None:
        statement = statement.where(IssuedToken.principal_uid == principal_uid)
    if audience is not None:
        statement = statement.where(IssuedToken.audience == audience)
    return paginate(session, statement, IssuedToken.seq, page)


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
