"""API keys and workload tokens: format, hashing, and who a request acts as.

An API key is ``wk-`` followed by 43 base64url characters (256 random bits; the shapes
of keys, tokens and JWTs are in :mod:`federation.domain.secret_shapes`). Only its
SHA-256 is stored: a key with that much entropy needs no slow hash, and a stolen
database yields nothing that authenticates. A run's workload token is stored the same
way. Lookups go by hash, and the found hash is compared again in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from federation.domain.secret_shapes import (
    API_KEY,
    KEY_PREFIX,
    SECRET_BYTES,
    WORKLOAD_TOKEN_PREFIX,
)
from federation.errors import AuthenticationRequired, InvalidRequest, NotAuthorized
from federation.store.issuing.port import CALLER_QUERY, LAST_USED_UPDATE

# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class Scope(StrEnum):
    FEDERATE = "federate"
    RUNS_WRITE = "runs:write"
    AUDIT = "audit"  # read the transparency log
    ADMIN = "admin"


class KeyType(StrEnum):
    PERSONAL = "personal"
    AGENT = "agent"


class PrincipalType(StrEnum):
    USER = "user"
    SERVICE_ACCOUNT = "service_account"


EXPIRY_CHOICES: dict[str, timedelta | None] = {
    "1d": timedelta(days=1),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "never": None,
}


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def new_workload_token() -> str:
    return WORKLOAD_TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)


def mask(last4: str) -> str:
    return f"{KEY_PREFIX}**{last4}"


@dataclass(frozen=True)
class Caller:
    """The principal and key a request acts as."""

    key_id: str
    key_name: str
    key_type: str
    key_last4: str
    key_expires_at: datetime | None
    scopes: frozenset[str]
    principal_uid: str
    principal_type: str
    email: str | None
    display_name: str | None
    teams: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes

    def require(self, *accepted: Scope) -> None:
        """403 unless the key holds ``admin`` or one of ``accepted``."""
        if self.is_admin or any(scope in self.scopes for scope in accepted):
            return
        wanted = " or ".join(f"'{scope}'" for scope in dict.fromkeys((*accepted, Scope.ADMIN)))
        raise NotAuthorized(f"this API key lacks the {wanted} scope")


def authenticate(session: Session, presented: str | None, now: datetime) -> Caller:
    """The caller behind an API key, or 401 for anything else."""
    digest = presented_digest(presented)
    # NOTE: columns, not entities: on every request, and rows skip the ORM's bookkeeping
    key = checked_key(session.execute(CALLER_QUERY, {"digest": digest}).first(), digest, now)
    if last_used_due(key, now):
        # NOTE: committed at once, so that a request refused later still leaves its trace.
        session.execute(LAST_USED_UPDATE, {"key_seq": key.seq, "now": now})
        session.commit()
    return caller_of(key)


def presented_digest(presented: str | None) -> str:
    """The hash to look a presented key up by; 401 for what cannot be a key."""
    # NOTE: one error for missing, malformed, unknown, expired and deleted keys, so
    # the answer is no oracle for which keys exist.
    if not presented or not API_KEY.fullmatch(presented):
        raise AuthenticationRequired()
    return secret_hash(presented)


def checked_key(key: Any, digest: str, now: datetime) -> Any:
    """The row ``CALLER_QUERY`` found, if it is a live key: else 401."""
    if key is None or not hmac.compare_digest(key.key_hash, digest):
        raise AuthenticationRequired()
    if key.expires_at is not None and key.expires_at <= now:
        raise AuthenticationRequired()
    return key


def last_used_due(key: Any, now: datetime) -> bool:
    """Whether a key's ``last_used_at`` is old enough to be written again."""
    return key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION


def caller_of(key: Any) -> Caller:
    """The caller from a row of ``CALLER_QUERY``."""
    return Caller(
        key_id=key.id,
        key_name=key.name,
        key_type=key.type,
        key_last4=key.last4,
        key_expires_at=key.expires_at,
        scopes=frozenset(key.scopes),
        principal_uid=key.principal_uid,
        principal_type=key.principal_type,
        email=key.email,
        display_name=key.display_name,
        teams=tuple(key.teams),
    )


def parse_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(scopes))
    if not chosen:
        raise InvalidRequest("an API key needs at least one scope")
    unknown = [scope for scope in chosen if scope not in set(Scope)]
    if unknown:
        raise InvalidRequest(
            f"unknown scope {unknown[0][:32]!r}; valid scopes are "
            + ", ".join(scope.value for scope in Scope)
        )
    return chosen
