"""Runs: registered and moved by orchestrators (``runs:write``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from federation.api.deps import Context, CurrentCaller, DbSession, IssuingCaller
from federation.api.listing import Paging, list_out
from federation.api.openapi import problems
from federation.api.problems import trace_id
from federation.api.routes.federate import issue_request
from federation.api.schemas import (
    Identifier,
    IssueTokenBody,
    ListOut,
    Lookup,
    RunCreate,
    RunCreated,
    RunOut,
    RunTokenPreview,
    RunUpdate,
    Text,
    TokenRequestBody,
)
from federation.domain.run_states import RunState
from federation.registry import runs
from federation.registry.auth import Scope

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])
RunIdPath = Annotated[Lookup, Path()]


@router.post(
    "",
    status_code=201,
    summary="Register a run (the workload token is shown once)",
    responses=problems(403, 404, 409),
)
def create_run(
    body: RunCreate, context: Context, session: DbSession, caller: CurrentCaller
) -> RunCreated:
    caller.require(Scope.RUNS_WRITE)
    registered = runs.register_run(
        session,
        caller,
        run_id=body.run_id,
        principal_uid=body.principal_uid,
        team_uid=body.team_uid,
        environment=body.environment,
        agent_name=body.agent_name,
        skill_spec=body.skill_spec,
        host=body.host,
        state=body.state,
        now=context.clock.now(),
    )
    return RunCreated.model_validate(registered)


@router.get("", summary="List runs, newest first", responses=problems(403))
def list_runs(
    session: DbSession,
    caller: CurrentCaller,
    page: Paging,
    state: Annotated[RunState | None, Query()] = None,
    principal_uid: Annotated[Identifier | None, Query()] = None,
    environment: Annotated[Text | None, Query()] = None,
) -> ListOut[RunOut]:
    caller.require(Scope.RUNS_WRITE)
    found = runs.list_runs(
        session, page, state=state, principal_uid=principal_uid, environment=environment
    )
    return list_out(found, RunOut)


@router.get("/{run_id}", summary="One run", responses=problems(403, 404))
def get_run(session: DbSession, caller: CurrentCaller, run_id: RunIdPath) -> RunOut:
    caller.require(Scope.RUNS_WRITE)
    return RunOut.model_validate(runs.get_run(session, run_id))


@router.patch("/{run_id}", summary="Move a run to another state", responses=problems(403, 404, 422))
def update_run(
    body: RunUpdate, context: Context, session: DbSession, caller: CurrentCaller, run_id: RunIdPath
) -> RunOut:
    caller.require(Scope.RUNS_WRITE)
    moved = runs.set_run_state(session, caller, run_id, body.state, context.clock.now())
    return RunOut.model_validate(moved)


@router.post(
    "/{run_id}/preview-token",
    summary="The claims a token for the run would carry, for an operator; nothing signed",
    responses=problems(403, 404),
)
async def preview_run_token(
    request: Request,
    body: TokenRequestBody,
    context: Context,
    caller: IssuingCaller,
    run_id: RunIdPath,
) -> RunTokenPreview:
    """The template, team, audience and duration checks of issue-token, and the claims
    the run's principal would get; what the console's Try it page shows. Unlike
    `/api/v1/federate/preview-token` it needs no workload token and answers for any
    run's principal, and reports the run's state rather than refusing it."""
    asked = IssueTokenBody.model_construct(run_id=run_id, **dict(body))
    preview = await context.issuer.preview_run(
        caller, issue_request(trace_id(request), asked, None, None)
    )
    prepared = preview.prepared
    return RunTokenPreview(
        header=prepared.header,
        claims=prepared.claims.to_dict(),
        issuable=preview.refusal is None,
        refusal=None if preview.refusal is None else str(preview.refusal),
        subject_components=preview.components,
    )
