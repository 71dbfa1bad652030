"""The transparency log over HTTP: C2SP ``tlog-tiles`` under ``/log/`` (the checkpoint,
hash tiles and entry bundles) and proofs under ``/api/v1/log/``.

The log holds subjects and run ids, so reading it takes an API key with the ``audit``
(or ``admin``) scope, as ``Authorization: Bearer`` on every route, tiles included,
unless ``FEDERATION_LOG_PUBLIC`` makes it public. Full tiles never change: they are
cacheable forever (privately, unless the log is public); the checkpoint for a second.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from federation.api.deps import AppContext, Context, Credentials, context_of, presented_key
from federation.api.middleware.observe import note_caller
from federation.api.openapi import problems
from federation.errors import ResourceNotFound
from federation.ledger import Ledger
from federation.registry.auth import Scope, authenticate

router = APIRouter(tags=["transparency log"])
FOREVER = 365 * 86400


class InclusionOut(BaseModel):
    index: int = Field(description="The entry's index in the log.")
    tree_size: int = Field(description="The size of the tree the proof is for.")
    entry: str = Field(description="The entry's canonical bytes, base64.")
    proof: list[str] = Field(description="The inclusion proof (RFC 9162 §2.1.3), base64 hashes.")
    checkpoint: str | None = Field(
        description="The signed checkpoint of tree_size (null if none was signed of that size)."
    )


class ConsistencyOut(BaseModel):
    old_size: int
    new_size: int
    proof: list[str] = Field(description="The consistency proof (RFC 9162 §2.1.4), base64 hashes.")


def _reader(request: Request, credentials: Credentials) -> Ledger:
    """The log, for a caller allowed to read it."""
    context = context_of(request)
    if context.ledger is None:
        raise ResourceNotFound("this issuer keeps no transparency log")
    if not context.settings.log_public:
        with context.store.session() as session:
            caller = authenticate(session, presented_key(credentials), context.clock.now())
        note_caller(request.scope, caller)
        caller.require(Scope.AUDIT)
    return context.ledger


LogReader = Annotated[Ledger, Depends(_reader)]
READ_PROBLEMS = problems(401, 403, 404)


@router.get(
    "/log/checkpoint",
    summary="The transparency log's latest signed checkpoint (C2SP tlog-checkpoint)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **READ_PROBLEMS},
)
def checkpoint(ledger: LogReader, context: Context) -> Response:
    return Response(
        ledger.latest().note,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": f"{_visibility(context)}, max-age=1"},
    )


@router.get(
    "/log/tile/{path:path}",
    summary="A hash tile or entry bundle of the log (C2SP tlog-tiles)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problems(400, 401, 403, 404)},
)
def tile(path: str, ledger: LogReader, context: Context) -> Response:
    served = ledger.served(f"tile/{path}")
    age = f"max-age={FOREVER}, immutable" if served.full else "max-age=60"
    return Response(
        served.data,
        media_type="application/octet-stream",
        headers={"Cache-Control": f"{_visibility(context)}, {age}"},
    )


@router.get(
    "/api/v1/log/inclusion",
    summary="The inclusion proof of a token's log entry",
    responses=problems(400, 401, 403, 404),
)
async def inclusion(
    ledger: LogReader,
    jti: Annotated[str | None, Query(max_length=64)] = None,
    token_sha256: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
    size: Annotated[int | None, Query(ge=0)] = None,
) -> InclusionOut:
    found = await run_in_threadpool(ledger.inclusion, jti=jti, token_sha256=token_sha256, size=size)
    return InclusionOut(
        index=found.index,
        tree_size=found.tree_size,
        entry=_b64(found.entry),
        proof=[_b64(value) for value in found.proof],
        checkpoint=found.checkpoint,
    )


@router.get(
    "/api/v1/log/consistency",
    summary="The consistency proof between two sizes of the log",
    responses=problems(400, 401, 403),
)
async def consistency(
    ledger: LogReader,
    old: Annotated[int, Query(ge=0)],
    new: Annotated[int | None, Query(ge=0)] = None,
) -> ConsistencyOut:
    old_size, new_size, proof = await run_in_threadpool(ledger.consistency, old, new)
    return ConsistencyOut(old_size=old_size, new_size=new_size, proof=[_b64(v) for v in proof])


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _visibility(context: AppContext) -> str:
    return "public" if context.settings.log_public else "private"
