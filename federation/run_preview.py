"""An operator's dry run for a run: the claims its principal would get, and what each
subject component renders for it, with nothing signed or recorded.

``POST /api/v1/federate/preview-token`` answers the run's own principal, from inside the
run. This answers an operator holding ``runs:write``, who writes the cloud's policy for
the run: the same template, team, audience and duration checks, the claims as the run's
principal would get them, and whether the run's state would let a token be issued now.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from federation.accounts import get_principal
from federation.auth import Caller, Scope
from federation.errors import FederationError, InvalidRequest
from federation.issuance import (
    IssueRequest,
    Prepared,
    PrincipalFacts,
    RunFacts,
    TokenIssuer,
    state_refusal,
    subject_context,
)
from federation.runs import get_run
from federation.subjects import COMPONENTS, SubjectRenderer


@dataclass(frozen=True)
class RunPrincipal:
    """A run's principal, as a token for the run would speak for it."""

    principal_uid: str
    principal_type: str
    email: str | None
    teams: tuple[str, ...]


@dataclass(frozen=True)
class RunPreview:
    prepared: Prepared
    refusal: FederationError | None  # what issue-token answers for the run's state now
    components: dict[str, str | None]  # each component alone; None where the run lacks it


def preview_run(
    issuer: TokenIssuer, session: Session, caller: Caller, request: IssueRequest
) -> RunPreview:
    caller.require(Scope.RUNS_WRITE)
    issuer.limits.key.take(caller.key_id)
    run = get_run(session, request.run_id)
    row = get_principal(session, run.principal_uid)
    principal = RunPrincipal(row.uid, row.type, row.email, tuple(row.teams))
    prepared = issuer.claims_for(principal, run, request)
    return RunPreview(
        prepared=prepared,
        refusal=state_refusal(run),
        components=subject_components(issuer.renderer, principal, run, prepared.claims.team),
    )


def subject_components(
    renderer: SubjectRenderer, principal: PrincipalFacts, run: RunFacts, team: str | None
) -> dict[str, str | None]:
    """Each template component rendered alone for ``run``, in the README's order."""
    context = subject_context(principal, run, team)
    rendered: dict[str, str | None] = {}
    for name in COMPONENTS:
        try:
            rendered[name] = renderer.render((name,), context)
        except InvalidRequest:
            rendered[name] = None
    return rendered
