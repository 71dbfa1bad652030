"""API keys: admins manage all; a user manages their own personal keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from federation.api.deps import Context, CurrentCaller, DbSession
from federation.api.listing import Paging, list_out
from federation.api.openapi import problems
from federation.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    Identifier,
    ListOut,
    Lookup,
)
from federation.registry import principals as accounts

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])


@router.post(
    "",
    status_code=201,
    summary="Create an API key (the raw key is shown once)",
    responses=problems(403, 404),
)
def create_api_key(
    body: ApiKeyCreate, context: Context, session: DbSession, caller: CurrentCaller
) -> ApiKeyCreated:
    # NOTE: per principal, not per key: every key a key creates could otherwise create
    # as many again (FEDERATION_RATE_LIMIT_KEY_CREATION)
    context.issuer.limits.key_creation.take(caller.principal_uid)
    created = accounts.create_api_key(
        session,
        caller,
        name=body.name,
        type=body.type,
        principal_uid=body.principal_uid,
        scopes=body.scopes,
        expires_in=body.expires_in,
        now=context.clock.now(),
    )
    return ApiKeyCreated.model_validate(created)


@router.get("", summary="List API keys, newest first")
def list_api_keys(
    session: DbSession,
    caller: CurrentCaller,
    page: Paging,
    principal_uid: Annotated[Identifier | None, Query()] = None,
) -> ListOut[ApiKeyOut]:
    return list_out(accounts.list_api_keys(session, caller, page, principal_uid), ApiKeyOut)


@router.delete(
    "/{key_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an API key at once",
    responses=problems(404),
)
def delete_api_key(
    context: Context,
    session: DbSession,
    caller: CurrentCaller,
    key_id: Annotated[Lookup, Path()],
) -> None:
    accounts.delete_api_key(session, caller, key_id, context.clock.now())
