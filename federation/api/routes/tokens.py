"""The audit log of issued tokens (admin): who got what, never the token itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from federation.api.deps import CurrentCaller, DbSession
from federation.api.listing import Paging, list_out
from federation.api.schemas import Audience, AuditOut, Identifier, ListOut, Lookup
from federation.registry.auth import Scope
from federation.store.models import IssuedToken
from federation.store.pagination import paginate

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


def audit_out(row: IssuedToken) -> AuditOut:
    return AuditOut(
        jti=row.jti,
        run_id=row.run_id,
        principal_uid=row.principal_uid,
        team_uid=row.team_uid,
        subject=row.subject,
        audience=row.audience,
        alg=row.alg,
        kid=row.kid,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        api_key_id=row.api_key_id,
        trace_id=row.trace_id,
    )


@router.get("", summary="Issued tokens, newest first")
def list_tokens(
    session: DbSession,
    caller: CurrentCaller,
    page: Paging,
    run_id: Annotated[Lookup | None, Query()] = None,
    principal_uid: Annotated[Identifier | None, Query()] = None,
    audience: Annotated[Audience | None, Query()] = None,
) -> ListOut[AuditOut]:
    caller.require(Scope.ADMIN)
    statement = select(IssuedToken)
    if run_id is not None:
        statement = statement.where(IssuedToken.run_id == run_id)
    if principal_uid is not None:
        statement = statement.where(IssuedToken.principal_uid == principal_uid)
    if audience is not None:
        statement = statement.where(IssuedToken.audience == audience)
    return list_out(paginate(session, statement, IssuedToken.seq, page), audit_out)
