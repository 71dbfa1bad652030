"""Console sessions on the server: what makes a console sign-in end before its cookie.

The console's cookie carries, sealed, the API key it signed in with and a random session
id (256 bits). Only the id's SHA-256 is stored here, with the key's id, the principal and
the time the session ends by itself; the raw id and the key are never stored. Every
console request asks :func:`is_live`: a session is live while it is not ended (signed
out, or "sign out everywhere"), not past its lifetime, and the key in its cookie still
authenticates, by the same checks as the API's (:func:`federation.registry.auth.
checked_key`), and is the key the session began with. So deleting or expiring a key ends
its sessions without anything here being told, and one database serves every replica.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.orm import Session

from federation.errors import AuthenticationRequired
from federation.registry.auth import checked_key, presented_digest, secret_hash
from federation.store.issuing.port import CALLER_QUERY
from federation.store.models import ConsoleSession


def begin(
    session: Session, *, session_id: str, api_key: str, now: datetime, lifetime: timedelta
) -> ConsoleSession:
    """Record a new session of ``api_key``; 401 unless the key authenticates now. Rows
    past their lifetime go at the same time, so the table holds only live days."""
    digest = presented_digest(api_key)
    key = checked_key(session.execute(CALLER_QUERY, {"digest": digest}).first(), digest, now)
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    row = ConsoleSession(
        id_hash=secret_hash(session_id),
        api_key_id=key.id,
        principal_uid=key.principal_uid,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return row


def is_live(session: Session, *, session_id: str, api_key: str, now: datetime) -> bool:
    """Whether the session may still be used with the key its cookie holds."""
    key_id = session.scalar(
        select(ConsoleSession.api_key_id).where(
            ConsoleSession.id_hash == secret_hash(session_id),
            ConsoleSession.revoked_at.is_(None),
            ConsoleSession.expires_at > now,
        )
    )
    if key_id is None:
        return False
    try:
        digest = presented_digest(api_key)
        key = checked_key(session.execute(CALLER_QUERY, {"digest": digest}).first(), digest, now)
    except AuthenticationRequired:
        return False
    return bool(key.id == key_id)


def end(session: Session, *, session_id: str, now: datetime) -> bool:
    """End one session (signing out); whether it was still going."""
    ended = session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id_hash == secret_hash(session_id), _going(now))
        .values(revoked_at=now)
    )
    return bool(ended.rowcount)  # type: ignore[attr-defined]


def end_all(session: Session, *, now: datetime, principal_uid: str | None = None) -> int:
    """End every going session, or every one of ``principal_uid``: how many."""
    statement = update(ConsoleSession).where(_going(now)).values(revoked_at=now)
    if principal_uid is not None:
        statement = statement.where(ConsoleSession.principal_uid == principal_uid)
    ended = session.execute(statement)
    return int(ended.rowcount)  # type: ignore[attr-defined]


def _going(now: datetime) -> ColumnElement[bool]:
    # NOTE: "going" is not ended and not past its lifetime; whether the key still works
    # is for is_live to see, so a count of ended sessions may include dead keys' ones.
    return and_(ConsoleSession.revoked_at.is_(None), ConsoleSession.expires_at > now)
