"""Signing keys (admin): their lifecycle, and manual rotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from federation.api.deps import AppContext, Context, CurrentCaller, DbSession
from federation.api.listing import Paging, list_out
from federation.api.schemas import KeyChangeOut, KeyOut, ListOut, Lookup, PageInfo, RotateBody
from federation.keys import ALGORITHMS, KeyChange, KeyRecord, KeyStatus
from federation.registry.audit import outstanding
from federation.registry.auth import Scope
from federation.store.pagination import paginate_items

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


def key_out(status: KeyStatus) -> KeyOut:
    record = status.record
    return KeyOut(
        kid=record.kid,
        alg=record.alg,
        state=status.state,
        created_at=record.created_at,
        activates_at=record.activates_at,
        retires_at=status.retires_at,
        removed_at=status.removed_at,
        location=record.location,
    )


@router.get("", summary="Signing keys and their states, newest first")
def list_keys(context: Context, caller: CurrentCaller, page: Paging) -> ListOut[KeyOut]:
    caller.require(Scope.ADMIN)
    found = paginate_items(context.keyring.statuses(), lambda status: status.record.kid, page)
    return list_out(found, key_out)


@router.post("/rotate", status_code=201, summary="Publish new keys; they sign after the lead time")
def rotate_keys(
    context: Context, caller: CurrentCaller, body: RotateBody | None = None
) -> ListOut[KeyOut]:
    caller.require(Scope.ADMIN)
    algorithms = [body.alg] if body is not None and body.alg else list(ALGORITHMS)
    created: list[KeyRecord] = [context.keyring.rotate(alg) for alg in algorithms]
    kids = {record.kid for record in created}
    items = [key_out(s) for s in context.keyring.statuses() if s.record.kid in kids]
    return ListOut[KeyOut](items=items, page_info=PageInfo(has_next_page=False, next_cursor=None))


@router.post("/{kid}/retire", summary="Emergency: stop signing with a key now")
def retire_key(
    context: Context, session: DbSession, caller: CurrentCaller, kid: Annotated[Lookup, Path()]
) -> KeyChangeOut:
    caller.require(Scope.ADMIN)
    return _change_out(context, session, context.keyring.retire(kid), revoked=False)


@router.post("/{kid}/revoke", summary="Compromise: drop a key from the JWKS now")
def revoke_key(
    context: Context, session: DbSession, caller: CurrentCaller, kid: Annotated[Lookup, Path()]
) -> KeyChangeOut:
    caller.require(Scope.ADMIN)
    return _change_out(context, session, context.keyring.revoke(kid), revoked=True)


def _change_out(
    context: AppContext, session: Session, change: KeyChange, *, revoked: bool
) -> KeyChangeOut:
    now = context.clock.now()
    by_kid = {status.record.kid: status for status in context.keyring.statuses()}
    kid = change.record.kid
    left = outstanding(session, kid, now)
    warnings = []
    if revoked and left.count:
        warnings.append(
            f"{left.count} unexpired tokens signed by {kid} no longer verify; the last of "
            f"them would have expired at {left.last_expiry:%Y-%m-%dT%H:%M:%SZ}"
        )
    replacement = change.replacement
    if replacement is not None:
        cache = timedelta(seconds=context.settings.jwks_max_age)
        if now - replacement.created_at < cache:
            warnings.append(
                f"{replacement.kid} signs from now but was published at "
                f"{replacement.created_at:%H:%M:%SZ}: verifiers whose cached JWKS is older "
                f"may reject its tokens until {replacement.created_at + cache:%H:%M:%SZ}"
            )
    return KeyChangeOut(
        key=key_out(by_kid[kid]),
        replacement=key_out(by_kid[replacement.kid]) if replacement is not None else None,
        outstanding_tokens=left.count,
        outstanding_until=left.last_expiry,
        warnings=warnings,
    )
