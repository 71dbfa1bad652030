"""The audit log of issued tokens (admin): who got what, never the token itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from federation.api.deps import CurrentCaller, DbSession
from federation.api.listing import Paging, list_out
from federation.api.openapi import problems
from federation.api.schemas import Audience, AuditOut, Identifier, ListOut, Lookup
from federation.registry.audit import issued_tokens
from federation.registry.auth import Scope

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.get("", summary="Issued tokens, newest first", responses=problems(403))
def list_tokens(
    session: DbSession,
    caller: CurrentCaller,
    page: Paging,
    run_id: Annotated[Lookup | None, Query()] = None,
    principal_uid: Annotated[Identifier | None, Query()] = None,
    audience: Annotated[Audience | None, Query()] = None,
) -> ListOut[AuditOut]:
    caller.require(Scope.ADMIN)
    found = issued_tokens(
        session, page, run_id=run_id, principal_uid=principal_uid, audience=audience
    )
    return list_out(found, AuditOut)
