"""``POST /api/v1/federate/issue-token``: a signed JWT bound to a run; and
``POST /api/v1/federate/preview-token``: the claims it would carry, unsigned.

Every run starts with issue-token, so its route is lean: it takes the raw request, reads
the body with the same model the OpenAPI document declares, and answers with bytes
serialized once. Every protocol builds its :class:`IssueRequest` with
:func:`issue_request`, from an ``IssueTokenBody`` (one set of input limits).
"""

from __future__ import annotations

from email.message import Message
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.types import Scope

from federation.api.deps import Context, IssuingCaller, context_of
from federation.api.middleware.observe import note_caller, note_run
from federation.api.openapi import problems
from federation.api.problems import trace_id, validation_detail
from federation.api.schemas import IssueTokenBody, TokenOut, TokenPreview
from federation.domain.tokens import TOKEN_TYPE
from federation.errors import InvalidRequest
from federation.issuing.minting import IssuedToken
from federation.issuing.pipeline import IssueRequest

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


@router.post(
    "/issue-token",
    summary="Issue an identity token for a run",
    response_model=TokenOut,
    responses=problems(403, 404, 409, 422),
    openapi_extra={
        "security": [{"HTTPBearer": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/IssueTokenBody"}}
            },
        },
        "parameters": [
            {
                "name": "X-Warp-Ambient-Workload-Token",
                "in": "header",
                "required": False,
                "description": "The run's workload token: proves the request comes from "
                "inside the run.",
                "schema": {"type": "string"},
            },
            {
                "name": "X-Warp-Team-Uid",
                "in": "header",
                "required": False,
                "description": "The team to speak for, if you are in several.",
                "schema": {"type": "string"},
            },
        ],
    },
)
async def issue_token(request: Request) -> Response:
    """A signed JWT bound to the run, for the run's own principal, from inside the run."""
    headers = _headers(request.scope)
    body = _body(await request.body(), headers.get(b"content-type"))
    wanted = issue_request(
        trace_id(request),
        body,
        headers.get(b"x-warp-ambient-workload-token"),
        headers.get(b"x-warp-team-uid"),
    )
    issuer = context_of(request).issuer
    note_run(request.scope, wanted.run_id)
    scheme, credentials = get_authorization_scheme_param(headers.get(b"authorization"))
    presented = credentials if scheme.lower() == "bearer" and credentials else None
    issued = await issuer.issue_for_key(presented, wanted, partial(note_caller, request.scope))
    return Response(token_json(issued), media_type="application/json")


def _body(raw: bytes, content_type: str | None) -> IssueTokenBody:
    """The body as the framework reads it for an ``IssueTokenBody`` parameter: JSON when
    the content type says JSON, and the same validation errors."""
    if content_type == "application/json":
        json_body = True  # NOTE: what every client sends; the rest parsed as a header
    elif content_type:
        message = Message()
        message["content-type"] = content_type
        subtype = message.get_content_subtype()
        json_body = message.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        )
    else:
        json_body = False  # NOTE: as the framework: no content type is no JSON body
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    if not json_body:
        raise RequestValidationError(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ("body",),
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "input": None,
                }
            ]
        )
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}]
        ) from None
    try:
        # NOTE: the parsed object, validated as the framework validates it (its messages)
        return IssueTokenBody.model_validate(parsed, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None


_READ = frozenset(
    (b"content-type", b"authorization", b"x-warp-ambient-workload-token", b"x-warp-team-uid")
)


def _headers(scope: Scope) -> dict[bytes, str]:
    """The headers issue-token reads, in one pass (the first of a repeated one, as the
    framework's ``Header`` parameters and ``request.headers`` give it)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _READ and name not in found:
            found[name] = value.decode("latin-1")
    return found


@router.post(
    "/preview-token",
    summary="The claims a token for a run would carry, unsigned",
    responses=problems(403, 404, 409, 422),
)
async def preview_token(
    request: Request,
    body: IssueTokenBody,
    context: Context,
    caller: IssuingCaller,
    workload_token: WorkloadToken = None,
    team_header: TeamUid = None,
) -> TokenPreview:
    """Every check of issue-token, then the header and claims, with nothing signed or
    recorded: what `issue-token --check-aws-trust-policy` tests before it asks."""
    prepared = await context.issuer.prepare(
        caller, issue_request(trace_id(request), body, workload_token, team_header)
    )
    return TokenPreview(header=prepared.header, claims=prepared.claims.to_dict())


def issue_request(
    trace: str | None,
    body: IssueTokenBody,
    workload_token: str | None,
    team_header: str | None,
) -> IssueRequest:
    """The one place an :class:`IssueRequest` is built, from a body that passed the
    model's limits (REST, GraphQL, the broker and the previews alike)."""
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


def checked_body(values: dict[str, Any]) -> IssueTokenBody:
    """An ``IssueTokenBody`` from another protocol's input, under the same limits; a
    value past them is an ``invalid_request`` naming the field."""
    try:
        return IssueTokenBody.model_validate(values)
    except ValidationError as exc:
        raise InvalidRequest(validation_detail(exc.errors())) from None


def token_json(issued: IssuedToken) -> bytes:
    """``TokenOut`` as JSON, encoded once by orjson: the bytes pydantic would write for
    the same model (a test holds them equal), without building and validating it."""
    claims = issued.claims
    return orjson.dumps(
        {
            "token": issued.token,
            "token_type": TOKEN_TYPE,
            "issued_at": issued.issued_at,
            "expires_at": issued.expires_at,
            "issuer": claims.issuer,
            "subject": claims.subject,
            "audience": claims.aud,
            "jti": claims.jti,
            "kid": issued.kid,
        },
        option=orjson.OPT_UTC_Z,
    )
