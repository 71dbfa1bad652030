"""Signing keys (admin): their lifecycle, and manual rotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from federation.api.deps import AppContext, Context, CurrentCaller, DbSession
from federation.api.listing import Paging, list_out
from federation.api.schemas import KeyChangeOut, KeyOut, ListOut, Lookup, RotateBody
from federation.keys import ALGORITHMS, KeyChange, KeyRecord
from federation.registry.audit import outstanding
from federation.registry.auth import Scope
from federation.store.pagination import Page, paginate_items

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


@router.get("", summary="Signing keys and their states, newest first")
def list_keys(context: Context, caller: CurrentCaller, page: Paging) -> ListOut[KeyOut]:
    caller.require(Scope.ADMIN)
    found = paginate_items(context.keyring.statuses(), lambda status: status.record.kid, page)
    return list_out(found, KeyOut)


@router.post("/rotate", status_code=201, summary="Publish new keys; they sign after the lead time")
def rotate_keys(
    context: Context, caller: CurrentCaller, body: RotateBody | None = None
) -> ListOut[KeyOut]:
    caller.require(Scope.ADMIN)
    algorithms = [body.alg] if body is not None and body.alg else list(ALGORITHMS)
    created: list[KeyRecord] = [context.keyring.rotate(alg) for alg in algorithms]
    kids = {record.kid for record in created}
    items = [status for status in context.keyring.statuses() if status.record.kid in kids]
    return list_out(Page(items=items, next_cursor=None), KeyOut)


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
        key=KeyOut.model_validate(by_kid[kid]),
        replacement=None if replacement is None else KeyOut.model_validate(by_kid[replacement.kid]),
        outstanding_tokens=left.count,
        outstanding_until=left.last_expiry,
        warnings=warnings,
    )
