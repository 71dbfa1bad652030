"""``POST /api/v1/federate/issue-token``: a signed JWT bound to a run; and
``POST /api/v1/federate/preview-token``: the claims it would carry, unsigned."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Header, Request, Response
from starlette.types import Scope

from federation.api.deps import (
    AppContext,
    Context,
    Credentials,
    CurrentCaller,
    DbSession,
    presented_key,
)
from federation.api.observe import note_caller, note_run
from federation.api.problems import trace_id
from federation.api.schemas import IssueTokenBody, TokenOut, TokenPreview
from federation.issuance import IssuedToken, IssueRequest
from federation.tokens import TOKEN_TYPE

router = APIRouter(prefix="/api/v1/federate", tags=["federate"])
ISSUE_PATH = "/api/v1/federate/issue-token"

WorkloadToken = Annotated[
    str | None,
    Header(
        alias="X-Warp-Ambient-Workload-Token",
        description="The run's workload token: proves the request comes from inside the run.",
    ),
]
TeamUid = Annotated[
    str | None,
    Header(alias="X-Warp-Team-Uid", description="The team to speak for, if you are in several."),
]


@router.post("/issue-token", summary="Issue an identity token for a run", response_model=TokenOut)
async def issue_token(
    request: Request,
    body: IssueTokenBody,
    context: Context,
    credentials: Credentials,
    workload_token: WorkloadToken = None,
    team_header: TeamUid = None,
) -> Response:
    """Answered by ``IssueTokenMiddleware`` for well-formed JSON requests; here for the
    OpenAPI document and for every request it passes on (whose body the framework then
    refuses as it refuses any other)."""
    wanted = issue_request(trace_id(request), body, workload_token, team_header)
    return await issued_response(context, presented_key(credentials), wanted, request.scope)


async def issued_response(
    context: AppContext, presented: str | None, wanted: IssueRequest, scope: Scope
) -> Response:
    """Issue (on the event loop for SQLite, in a few threads for PostgreSQL) and answer
    ``TokenOut`` as JSON; the run and the caller are noted in ``scope`` for the log."""
    direct = context.direct_issue
    note_run(scope, wanted.run_id)
    note = partial(note_caller, scope)
    if direct.inline:
        issued = direct(presented, wanted, note)
    else:
        issued = await to_thread.run_sync(direct, presented, wanted, note, limiter=_issue_threads())
    # NOTE: serialized here, by pydantic's own serializer, rather than validated again
    # and encoded by the framework (a tenth of the request's time)
    return Response(token_out(issued).model_dump_json(), media_type="application/json")


# NOTE: a few threads, not the 40 of the shared pool: every driver call releases and
# retakes the GIL, and with many threads each retake waits behind the others (measured
# on PostgreSQL, 16 connections: 1 thread 246 tokens/s, 4 threads 305, 10 threads 307;
# through the shared pool, a p99 over a second).
ISSUE_THREADS = 4
_limiter: list[CapacityLimiter] = []


def _issue_threads() -> CapacityLimiter:
    if not _limiter:  # NOTE: made on first use, inside the worker's event loop
        _limiter.append(CapacityLimiter(ISSUE_THREADS))
    return _limiter[0]


@router.post("/preview-token", summary="The claims a token for a run would carry, unsigned")
def preview_token(
    request: Request,
    body: IssueTokenBody,
    context: Context,
    session: DbSession,
    caller: CurrentCaller,
    workload_token: WorkloadToken = None,
    team_header: TeamUid = None,
) -> TokenPreview:
    """Every check of issue-token, then the header and claims, with nothing signed or
    recorded: what `issue-token --check-aws-trust-policy` tests before it asks."""
    prepared = context.issuer.prepare(
        session, caller, issue_request(trace_id(request), body, workload_token, team_header)
    )
    return TokenPreview(header=prepared.header, claims=prepared.claims.to_dict())


def issue_request(
    trace: str | None,
    body: IssueTokenBody,
    workload_token: str | None,
    team_header: str | None,
) -> IssueRequest:
    return IssueRequest(
        run_id=body.run_id,
        audience=body.audience,
        duration=body.duration,
        duration_seconds=body.requested_duration_seconds,
        subject_template=body.subject_template,
        team_uid=body.team_uid,
        team_header=team_header,
        workload_token=workload_token,
        algorithm=body.algorithm,
        aws_session_tags=body.aws_session_tags,
        trace_id=trace,
    )


def token_out(issued: IssuedToken) -> TokenOut:
    claims = issued.claims
    return TokenOut(
        token=issued.token,
        token_type=TOKEN_TYPE,
        issued_at=issued.issued_at,
        expires_at=issued.expires_at,
        issuer=claims.issuer,
        subject=claims.subject,
        audience=claims.aud,
        jti=claims.jti,
        kid=issued.kid,
    )
