"""Principals and their API keys.

Who may manage keys: an ``admin`` key manages every key. Without ``admin``, a user may
create personal keys for themselves, never handing a new key more than their own (its
scopes a subset of the caller's, its life no longer than the caller key's), and may
delete only the key they present and the keys it created. Deleting a key deletes the
keys created with it: a key stolen from a run's environment cannot make itself a copy
that outlives its deletion, nor delete its owner's other keys.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.errors import InvalidRequest, NotAuthorized, ResourceNotFound
from federation.registry.auth import (
    EXPIRY_CHOICES,
    Caller,
    KeyType,
    PrincipalType,
    Scope,
    new_api_key,
    parse_scopes,
    secret_hash,
)
from federation.store.database import add_unique
from federation.store.models import ApiKey, Principal
from federation.store.pagination import Page, PageRequest, paginate

BOOTSTRAP_PRINCIPAL = "federation-admin"


def create_principal(
    session: Session,
    *,
    type: str,
    uid: str,
    email: str | None,
    display_name: str | None,
    teams: Sequence[str],
    now: datetime,
) -> Principal:
    if type not in set(PrincipalType):
        raise InvalidRequest("principal type must be 'user' or 'service_account'")
    if email is not None and type != PrincipalType.USER:
        raise InvalidRequest("only user principals have an email")
    principal = Principal(
        uid=uid,
        type=type,
        email=email,
        display_name=display_name,
        teams=list(dict.fromkeys(teams)),
        created_at=now,
    )
    add_unique(session, principal, f"principal {uid}")
    return principal


def get_principal(session: Session, uid: str) -> Principal:
    principal = session.scalar(select(Principal).where(Principal.uid == uid))
    if principal is None:
        raise ResourceNotFound(f"principal {uid} not found")
    return principal


def list_principals(session: Session, page: PageRequest) -> Page[Principal]:
    return paginate(session, select(Principal), Principal.seq, page)


@dataclass(frozen=True)
class CreatedKey:
    """A new key row, and the raw key: returned once, stored nowhere."""

    row: ApiKey
    raw: str


def create_api_key(
    session: Session,
    caller: Caller | None,
    *,
    name: str,
    type: str,
    principal_uid: str | None,
    scopes: Sequence[str],
    expires_in: str,
    now: datetime,
    bootstrap: bool = False,
) -> CreatedKey:
    """Create a key. ``caller`` is ``None`` only for the local bootstrap of `init`."""
    chosen = parse_scopes(scopes)
    if type not in set(KeyType):
        raise InvalidRequest("API key type must be 'personal' or 'agent'")
    if expires_in not in EXPIRY_CHOICES:
        raise InvalidRequest(f"expires_in must be one of {', '.join(EXPIRY_CHOICES)}")
    lifetime = EXPIRY_CHOICES[expires_in]
    expires_at = None if lifetime is None else now + lifetime
    if principal_uid is None:
        if caller is None:
            raise InvalidRequest("principal_uid is required")
        principal_uid = caller.principal_uid
    self_service = caller if caller is not None and not caller.is_admin else None
    if self_service is not None and principal_uid != self_service.principal_uid:
        # NOTE: before any lookup, so that the answer tells nothing about other principals.
        raise NotAuthorized("without the 'admin' scope you may create only your own personal keys")
    principal = get_principal(session, principal_uid)
    if type == KeyType.PERSONAL and principal.type != PrincipalType.USER:
        raise InvalidRequest(
            f"a personal key needs a user principal; {principal_uid} is a "
            f"{principal.type} (use type 'agent')"
        )
    if type == KeyType.AGENT and principal.type != PrincipalType.SERVICE_ACCOUNT:
        raise InvalidRequest(
            f"an agent key needs a service_account principal; {principal_uid} is a "
            f"{principal.type} (use type 'personal')"
        )
    if self_service is not None:
        _check_self_service(self_service, type, chosen, expires_at)
    raw = new_api_key()
    row = ApiKey(
        id="ak_" + secrets.token_hex(8),
        name=name,
        type=type,
        principal_uid=principal_uid,
        scopes=chosen,
        key_hash=secret_hash(raw),
        last4=raw[-4:],
        bootstrap=bootstrap,
        parent_key_id=self_service.key_id if self_service is not None else None,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return CreatedKey(row=row, raw=raw)


def _check_self_service(
    caller: Caller,
    type: str,
    scopes: Sequence[str],
    expires_at: datetime | None,
) -> None:
    if type != KeyType.PERSONAL:
        raise NotAuthorized("without the 'admin' scope you may create only your own personal keys")
    if caller.principal_type != PrincipalType.USER:
        raise NotAuthorized("only users hold personal keys")
    extra = [scope for scope in scopes if scope not in caller.scopes]
    if extra:
        raise NotAuthorized(f"a new key cannot hold the '{extra[0]}' scope, which yours lacks")
    if caller.key_expires_at is not None and (
        expires_at is None or expires_at > caller.key_expires_at
    ):
        raise NotAuthorized("a new key cannot outlive the key that creates it")


def list_api_keys(
    session: Session, caller: Caller, page: PageRequest, principal_uid: str | None = None
) -> Page[ApiKey]:
    statement = select(ApiKey).where(ApiKey.deleted_at.is_(None))
    if not caller.is_admin:
        statement = statement.where(
            ApiKey.principal_uid == caller.principal_uid, ApiKey.type == KeyType.PERSONAL
        )
    if principal_uid is not None:
        statement = statement.where(ApiKey.principal_uid == principal_uid)
    return paginate(session, statement, ApiKey.seq, page)


def delete_api_key(session: Session, caller: Caller, key_id: str, now: datetime) -> ApiKey:
    """Invalidate a key, and the keys created with it, at once: the next request that
    presents any of them gets a 401."""
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.deleted_at.is_(None)))
    # NOTE: a key out of reach answers 404 like a missing one, so ids are no oracle.
    if key is None or not (caller.is_admin or _in_lineage(session, key, caller.key_id)):
        raise ResourceNotFound(f"API key {key_id} not found")
    doomed = [key]
    while doomed:
        current = doomed.pop()
        current.deleted_at = now
        doomed += session.scalars(
            select(ApiKey).where(ApiKey.parent_key_id == current.id, ApiKey.deleted_at.is_(None))
        ).all()
    session.flush()
    return key


def _in_lineage(session: Session, key: ApiKey, ancestor_id: str) -> bool:
    """Whether ``key`` is the key ``ancestor_id`` or was created (maybe indirectly) by it."""
    current: ApiKey | None = key
    for _ in range(64):  # bounded: lineages are short, and a cycle is impossible
        if current is None:
            return False
        if current.id == ancestor_id:
            return True
        if current.parent_key_id is None:
            return False
        current = session.scalar(select(ApiKey).where(ApiKey.id == current.parent_key_id))
    return False


def bootstrap_admin(session: Session, now: datetime) -> CreatedKey | None:
    """Create the first admin key, unless one exists. Never returns an existing key."""
    existing = session.scalar(
        select(ApiKey).where(ApiKey.bootstrap.is_(True), ApiKey.deleted_at.is_(None))
    )
    if existing is not None:
        return None
    if session.scalar(select(Principal).where(Principal.uid == BOOTSTRAP_PRINCIPAL)) is None:
        create_principal(
            session,
            type=PrincipalType.SERVICE_ACCOUNT,
            uid=BOOTSTRAP_PRINCIPAL,
            email=None,
            display_name="Bootstrap administrator",
            teams=(),
            now=now,
        )
    return create_api_key(
        session,
        None,
        name="bootstrap-admin",
        type=KeyType.AGENT,
        principal_uid=BOOTSTRAP_PRINCIPAL,
        scopes=[Scope.ADMIN],
        expires_in="never",
        now=now,
        bootstrap=True,
    )


def revoke_bootstrap_admin(session: Session, now: datetime) -> int:
    """Delete the bootstrap admin key(s), so that `init` can issue a new one."""
    keys = session.scalars(
        select(ApiKey).where(ApiKey.bootstrap.is_(True), ApiKey.deleted_at.is_(None))
    ).all()
    for key in keys:
        key.deleted_at = now
    session.flush()
    return len(keys)
