"""``POST /api/v1/federate/issue-token``: a signed JWT bound to a run; and
``POST /api/v1/federate/preview-token``: the claims it would carry, unsigned."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from federation.api.deps import Context, CurrentCaller, DbSession
from federation.api.problems import trace_id
from federation.api.schemas import IssueTokenBody, TokenOut, TokenPreview
from federation.issuance import IssuedToken, IssueRequest
from federation.tokens import TOKEN_TYPE

router = APIRouter(prefix="/api/v1/federate", tags=["federate"])

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


@router.post("/issue-token", summary="Issue an identity token for a run")
def issue_token(
    request: Request,
    body: IssueTokenBody,
    context: Context,
    session: DbSession,
    caller: CurrentCaller,
    workload_token: WorkloadToken = None,
    team_header: TeamUid = None,
) -> TokenOut:
    issued = context.issuer.issue(
        session, caller, _issue_request(request, body, workload_token, team_header)
    )
    session.commit()  # NOTE: the audit row is durable before the token leaves
    return token_out(issued)


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
        session, caller, _issue_request(request, body, workload_token, team_header)
    )
    return TokenPreview(header=prepared.header, claims=prepared.claims.to_dict())


def _issue_request(
    request: Request,
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
        trace_id=trace_id(request),
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
