"""Principals and their API keys.

Who may manage keys: an ``admin`` key manages every key. Without ``admin``, a user may
create personal keys for themselves, never handing a new key more than their own (its
scopes a subset of the caller's, its life no longer than the caller key's), and may
delete only the key they present and the keys it created. Deleting a key deletes the
keys created with it: a key stolen from a run's environment cannot make itself a copy
that outlives its deletion, nor delete its owner's other keys.

Creation and deletion serialize on the creating key. A new key is inserted only if the
key that creates it is still live, in one statement that, on PostgreSQL, also takes a
key-share lock on that key's row; a deletion locks each key it deletes (``FOR UPDATE``)
before it looks for the keys made with it. So a creation either commits before the
deletion reads the children, and is deleted with them, or waits and then finds its
creator deleted. On SQLite the conditional insert is one statement under the
database's write lock, and the deletion reads the children after its first write, in
the same write transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from federation.errors import (
    AuthenticationRequired,
    InvalidRequest,
    NotAuthorized,
    ResourceNotFound,
)
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
from federation.store.lineage import MAX_LINEAGE_DEPTH, ancestors
from federation.store.models import ApiKey, Principal
from federation.store.pagination import Page, PageRequest, paginate

BOOTSTRAP_PRINCIPAL = "federation-admin"
_CHUNK = 500  # keys per statement of a deletion's cascade (SQLite bounds bound values)
_NEW_KEY_COLUMNS = (
    "id",
    "name",
    "type",
    "principal_uid",
    "scopes",
    "key_hash",
    "last4",
    "bootstrap",
    "parent_key_id",
    "created_at",
    "expires_at",
)
_api_keys = cast("Table", ApiKey.__table__)
_creator = _api_keys.alias("creator")
# A new key, inserted only while the key that creates it is live (``new_<column>``,
# ``creator_id``).
_INSERT_WHILE_LIVE = insert(_api_keys).from_select(
    _NEW_KEY_COLUMNS,
    select(*(bindparam(f"new_{name}", type_=_creator.c[name].type) for name in _NEW_KEY_COLUMNS))
    .where(_creator.c.id == bindparam("creator_id"), _creator.c.deleted_at.is_(None))
    # NOTE: FOR KEY SHARE on PostgreSQL: a deletion of the creator (FOR UPDATE) waits for
    # this insert's commit, or this insert waits for the deletion's and then finds the
    # creator deleted; and last_used_at updates of the creator never wait for it.
    .with_for_update(read=True, key_share=True),
)
# How many ancestors the key ``key_id`` has (at most MAX_LINEAGE_DEPTH are counted).
_ANCESTOR_COUNT = select(func.count()).select_from(ancestors("id", bindparam("key_id")))


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
        _check_depth(session, self_service)
    raw = new_api_key()
    values: dict[str, Any] = {  # NOTE: the columns of _NEW_KEY_COLUMNS
        "id": "ak_" + secrets.token_hex(8),
        "name": name,
        "type": type,
        "principal_uid": principal_uid,
        "scopes": chosen,
        "key_hash": secret_hash(raw),
        "last4": raw[-4:],
        "bootstrap": bootstrap,
        "parent_key_id": self_service.key_id if self_service is not None else None,
        "created_at": now,
        "expires_at": expires_at,
    }
    if caller is None:
        row = ApiKey(**values)
        session.add(row)
        session.flush()
    else:
        row = _insert_while_live(session, values, caller.key_id)
    return CreatedKey(row=row, raw=raw)


def _insert_while_live(session: Session, values: dict[str, Any], creator_id: str) -> ApiKey:
    """Insert the key of ``values`` if the key ``creator_id`` is live, or 401: the
    caller's own key was deleted since it authenticated."""
    bound = {f"new_{name}": values[name] for name in _NEW_KEY_COLUMNS}
    session.execute(_INSERT_WHILE_LIVE, {**bound, "creator_id": creator_id})
    row = session.scalar(select(ApiKey).where(ApiKey.id == values["id"]))
    if row is None:
        raise AuthenticationRequired()
    return row


def _check_depth(session: Session, caller: Caller) -> None:
    """403 for a key with :data:`MAX_LINEAGE_DEPTH` ancestors: authentication walks a
    key's lineage, so lineages stay short."""
    if (session.scalar(_ANCESTOR_COUNT, {"key_id": caller.key_id}) or 0) >= MAX_LINEAGE_DEPTH:
        raise NotAuthorized(
            f"a key with {MAX_LINEAGE_DEPTH} keys above it cannot create keys; "
            "ask an admin for a key"
        )


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
    _delete_lineage(session, key.id, now)
    return key


def _delete_lineage(session: Session, key_id: str, now: datetime) -> None:
    """Delete a key and every key below it, a generation at a time. Each generation is
    locked and marked deleted before its children are read: a creation that holds a
    lock on one of them has committed by then (and its key is read and deleted), and
    one that comes later finds its creator deleted (see the module's docstring)."""
    generation = [key_id]
    while generation:
        children: list[str] = []
        for start in range(0, len(generation), _CHUNK):
            chunk = generation[start : start + _CHUNK]
            session.scalars(select(ApiKey.id).where(ApiKey.id.in_(chunk)).with_for_update()).all()
            session.execute(
                update(ApiKey)
                .where(ApiKey.id.in_(chunk), ApiKey.deleted_at.is_(None))
                .values(deleted_at=now)
            )
            children += session.scalars(
                select(ApiKey.id).where(
                    ApiKey.parent_key_id.in_(chunk), ApiKey.deleted_at.is_(None)
                )
            ).all()
        generation = children
    session.flush()


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
