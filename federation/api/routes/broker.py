"""Broker endpoints: cloud credentials for callers that should not handle the JWT.

``POST /api/v1/federate/aws/credentials`` and ``POST /api/v1/federate/gcp/access-token``
take the same authentication and run binding as issue-token (API key, workload token,
run state, team), mint the token in process (with its audit row), trade it at the
cloud's STS and answer with the credentials. A refusal upstream is a problem answer
whose ``upstream`` member says which service answered what.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from anyio import from_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, StringConstraints

from federation.api.deps import Context, IssuingCaller
from federation.api.openapi import problems
from federation.api.problems import trace_id
from federation.api.routes.federate import TeamUid, WorkloadToken, checked_body, issue_request
from federation.api.schemas import Lookup, Strict
from federation.exchange.source import MintedToken
from federation.issuing.pipeline import TokenIssuer
from federation.registry.auth import Caller

router = APIRouter(prefix="/api/v1/federate", tags=["broker"])

RoleArn = Annotated[
    str,
    StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$"),
]
TagName = Annotated[str, StringConstraints(max_length=32)]
Component = Annotated[str, StringConstraints(max_length=64)]


class LocalTokenSource:
    """Mints in this process, with every check issue-token makes; each token's audit
    row is committed before the token is sent to a cloud."""

    def __init__(
        self,
        issuer: TokenIssuer,
        caller: Caller,
        *,
        run_id: str,
        workload_token: str | None,
        team_header: str | None,
        trace: str | None,
    ) -> None:
        self.issuer = issuer
        self.caller = caller
        self._run_id = run_id
        self.workload_token = workload_token
        self.team_header = team_header
        self.trace = trace
        # The template of tokens minted without one (GCP's exchange asks for none).
        self.subject_template: Sequence[str] | None = None

    @property
    def run_id(self) -> str:
        return self._run_id

    def mint(
        self,
        audience: str,
        *,
        duration: str | None = None,
        subject_template: Sequence[str] | None = None,
        aws_session_tags: Sequence[str] | None = None,
        algorithm: str | None = None,
    ) -> MintedToken:
        body = checked_body(
            {
                "run_id": self._run_id,
                "audience": audience,
                "duration": duration,
                "subject_template": subject_template or self.subject_template,
                "algorithm": algorithm,
                "aws_session_tags": aws_session_tags,
            }
        )
        wanted = issue_request(self.trace, body, self.workload_token, self.team_header)
        # NOTE: the broker's routes run in a worker thread (the clouds' SDKs block);
        # issuing runs on the event loop, like every other request's
        issued = from_thread.run(self.issuer.issue, self.caller, wanted)
        return MintedToken(
            token=issued.token,
            issued_at=issued.issued_at,
            expires_at=issued.expires_at,
            subject=issued.claims.subject,
            issuer=issued.claims.issuer,
        )


class AwsCredentialsBody(Strict):
    run_id: Lookup
    role_arn: RoleArn
    session_name: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="Default Oz_Run_<run-id>."
    )
    duration_seconds: Annotated[int, Field(ge=900, le=43200)] = 3600
    policy: Annotated[str, StringConstraints(max_length=2048)] | None = None
    policy_arns: list[Annotated[str, StringConstraints(max_length=2048)]] = Field(
        default_factory=list, max_length=10
    )
    aws_session_tags: list[TagName] | None = Field(default=None, max_length=16)
    subject_template: list[Component] | None = Field(default=None, max_length=16)


class AwsCredentialsOut(BaseModel):
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    assumed_role_arn: str | None


class GcpAccessTokenBody(Strict):
    run_id: Lookup
    audience: Annotated[
        str, StringConstraints(pattern=r"^(https:)?//iam\.googleapis\.com/\S{1,250}$")
    ]
    service_account: Annotated[str, StringConstraints(max_length=320)] | None = None
    scopes: list[Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=lambda: ["https://www.googleapis.com/auth/cloud-platform"], max_length=20
    )
    lifetime_seconds: Annotated[int, Field(ge=600, le=43200)] = 3600
    subject_template: list[Component] | None = Field(default=None, max_length=16)


class AccessTokenOut(BaseModel):
    access_token: str
    expires_at: datetime
    token_type: str


def _source(
    request: Request,
    context: Any,
    caller: Caller,
    run_id: str,
    workload_token: str | None,
    team_header: str | None,
) -> LocalTokenSource:
    return LocalTokenSource(
        context.issuer,
        caller,
        run_id=run_id,
        workload_token=workload_token,
        team_header=team_header,
        trace=trace_id(request),
    )


@router.post(
    "/aws/credentials",
    summary="AWS credentials for a run's role (via STS)",
    responses=problems(403, 404, 409, 422),
)
def aws_credentials(
    request: Request,
    body: AwsCredentialsBody,
    context: Context,
    caller: IssuingCaller,
    workload_token: WorkloadToken = None,
    team_header: TeamUid = None,
) -> AwsCredentialsOut:
    from federation.exchange import aws

    source = _source(request, context, caller, body.run_id, workload_token, team_header)
    settings = context.settings
    credentials = aws.credentials(
        source,
        role_arn=body.role_arn,
        session_name=body.session_name,
        duration_seconds=body.duration_seconds,
        policy=body.policy,
        policy_arns=body.policy_arns,
        aws_session_tags=body.aws_session_tags,
        subject_template=body.subject_template or ("scoped_principal",),
        client=context.upstreams.aws_sts(settings.aws_region, settings.aws_sts_endpoint_url),
    )
    return AwsCredentialsOut(
        access_key_id=credentials.access_key_id,
        secret_access_key=credentials.secret_access_key,
        session_token=credentials.session_token,
        expiration=credentials.expiration,
        assumed_role_arn=credentials.assumed_role_arn,
    )


@router.post(
    "/gcp/access-token",
    summary="A GCP access token for a run (via GCP STS)",
    responses=problems(403, 404, 409, 422),
)
def gcp_access_token(
    request: Request,
    body: GcpAccessTokenBody,
    context: Context,
    caller: IssuingCaller,
    workload_token: WorkloadToken = None,
    team_header: TeamUid = None,
) -> AccessTokenOut:
    from federation.exchange import gcp

    source = _source(request, context, caller, body.run_id, workload_token, team_header)
    source.subject_template = body.subject_template
    settings = context.settings
    token = gcp.access_token(
        source,
        audience=body.audience,
        service_account=body.service_account,
        scopes=body.scopes,
        token_url=settings.gcp_sts_url,
        impersonation_url_base=settings.gcp_iam_url,
        lifetime_seconds=body.lifetime_seconds,
    )
    return AccessTokenOut(
        access_token=token.token, expires_at=token.expires_at, token_type=token.token_type
    )
