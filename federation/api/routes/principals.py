"""Principals (admin) and ``whoami`` (any key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from federation.api.deps import Context, CurrentCaller, DbSession
from federation.api.listing import Paging, list_out
from federation.api.openapi import problems
from federation.api.schemas import (
    Identifier,
    KeySummary,
    ListOut,
    PrincipalCreate,
    PrincipalOut,
    WhoAmI,
)
from federation.registry import principals as accounts
from federation.registry.auth import Scope, mask

router = APIRouter(prefix="/api/v1", tags=["principals"])


@router.get("/whoami", summary="The principal and key behind this request")
def whoami(caller: CurrentCaller) -> WhoAmI:
    return WhoAmI(
        type=caller.principal_type,
        uid=caller.principal_uid,
        display_name=caller.display_name,
        email=caller.email,
        teams=list(caller.teams),
        scopes=sorted(caller.scopes),
        key=KeySummary(
            id=caller.key_id,
            name=caller.key_name,
            type=caller.key_type,
            masked_key=mask(caller.key_last4),
            expires_at=caller.key_expires_at,
        ),
    )


@router.post(
    "/principals",
    status_code=201,
    summary="Create a user or service account",
    responses=problems(403, 409),
)
def create_principal(
    body: PrincipalCreate, context: Context, session: DbSession, caller: CurrentCaller
) -> PrincipalOut:
    caller.require(Scope.ADMIN)
    row = accounts.create_principal(
        session,
        type=body.type,
        uid=body.uid,
        email=body.email,
        display_name=body.display_name,
        teams=body.teams,
        now=context.clock.now(),
    )
    return PrincipalOut.model_validate(row)


@router.get("/principals", summary="List principals, newest first", responses=problems(403))
def list_principals(
    session: DbSession, caller: CurrentCaller, page: Paging
) -> ListOut[PrincipalOut]:
    caller.require(Scope.ADMIN)
    return list_out(accounts.list_principals(session, page), PrincipalOut)


@router.get("/principals/{uid}", summary="One principal", responses=problems(403, 404))
def get_principal(
    session: DbSession, caller: CurrentCaller, uid: Annotated[Identifier, Path()]
) -> PrincipalOut:
    caller.require(Scope.ADMIN)
    return PrincipalOut.model_validate(accounts.get_principal(session, uid))
