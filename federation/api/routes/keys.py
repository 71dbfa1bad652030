"""Signing keys (admin): their lifecycle, and manual rotation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import Field
from sqlalchemy.orm import Session

from federation.api.deps import AppContext, Context, CurrentCaller, DbSession
from federation.api.listing import Paging, list_out
from federation.api.openapi import problems
from federation.api.schemas import KeyChangeOut, KeyOut, ListOut, Lookup, PageInfo, RotateBody
from federation.keys import ALGORITHMS, KeyChange, KeyStatus
from federation.registry.audit import outstanding
from federation.registry.auth import Scope
from federation.store.pagination import paginate_items

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


class RotatedKeyOut(KeyOut):
    created: bool = Field(
        description="false: a next key of this algorithm was published already; it is this "
        "one, and no key was made (at most one key of an algorithm waits to sign)."
    )


@dataclass(frozen=True)
class _Rotated:
    """A key's status and whether the rotation made the key: what RotatedKeyOut reads."""

    status: KeyStatus
    created: bool

    def __getattr__(self, name: str) -> Any:
        return getattr(self.status, name)


@router.get("", summary="Signing keys and their states, newest first", responses=problems(403))
def list_keys(context: Context, caller: CurrentCaller, page: Paging) -> ListOut[KeyOut]:
    caller.require(Scope.ADMIN)
    found = paginate_items(context.keyring.statuses(), lambda status: status.record.kid, page)
    return list_out(found, KeyOut)


@router.post(
    "/rotate",
    status_code=201,
    summary="Publish new keys; they sign after the lead time",
    responses={
        200: {
            "model": ListOut[RotatedKeyOut],
            "description": "Nothing was made: each algorithm asked for has a next key "
            "already, answered with `created` false.",
        },
        **problems(403),
    },
)
def rotate_keys(
    context: Context, caller: CurrentCaller, response: Response, body: RotateBody | None = None
) -> ListOut[RotatedKeyOut]:
    caller.require(Scope.ADMIN)
    algorithms = [body.alg] if body is not None and body.alg else list(ALGORITHMS)
    created = {
        rotation.record.kid: rotation.created
        for rotation in (context.keyring.rotation(alg) for alg in algorithms)
    }
    items = [
        RotatedKeyOut.model_validate(_Rotated(status, created[status.record.kid]))
        for status in context.keyring.statuses()
        if status.record.kid in created
    ]
    if not any(created.values()):
        response.status_code = 200
    return ListOut[RotatedKeyOut](
        items=items, page_info=PageInfo(has_next_page=False, next_cursor=None)
    )


@router.post(
    "/{kid}/retire",
    summary="Emergency: stop signing with a key now",
    responses=problems(403, 404),
)
def retire_key(
    context: Context, session: DbSession, caller: CurrentCaller, kid: Annotated[Lookup, Path()]
) -> KeyChangeOut:
    caller.require(Scope.ADMIN)
    return _change_out(context, session, context.keyring.retire(kid), revoked=False)


@router.post(
    "/{kid}/revoke",
    summary="Compromise: drop a key from the JWKS now",
    responses=problems(403, 404),
)
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
