"""Signing keys (admin): their lifecycle, and manual rotation."""

from __future__ import annotations

from fastapi import APIRouter

from federation.api.deps import Context, CurrentCaller
from federation.api.listing import Paging, list_out
from federation.api.schemas import KeyOut, ListOut, PageInfo, RotateBody
from federation.auth import Scope
from federation.keys import ALGORITHMS, KeyRecord, KeyStatus
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
