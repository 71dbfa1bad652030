"""Issuing a token for a run: every check, then sign, then the audit row (or, for a
preview, every check and the claims, unsigned and unrecorded).

Who may get a token for a run is checked in DESIGN §2's order, the first failure
answering: the API key (401, before this module) and its scope (403), the run exists
(404), the key's principal is the run's principal (403), the run's workload token (403),
the run's state (409 while waiting, 422 once finished), then the team (400 when
ambiguous). Only then are the template, audience, algorithm and duration looked at.

Rate limits (429) sit where a refusal costs least: the key's bucket right after the
scope, before the run is read; the run's after every check, before anything is signed
or written, so that no one but the run's own principal can spend its tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, insert
from sqlalchemy.orm import Session

from federation import jws
from federation.auth import Caller, PrincipalType, Scope, secret_matches
from federation.clock import Clock
from federation.durations import DurationPolicy, Grant, parse_duration
from federation.errors import (
    Conflict,
    FederationError,
    InvalidRequest,
    NotAuthorized,
    OperationNotSupported,
)
from federation.keys import ALGORITHMS, Keyring
from federation.rate_limits import Limits
from federation.run_states import FINISHED, WAITING
from federation.runs import get_run
from federation.session_tags import session_tags
from federation.settings import Settings
from federation.store.models import IssuedToken as AuditRow
from federation.subjects import (
    TEAM_COMPONENTS,
    SubjectContext,
    SubjectRenderer,
    check_length,
    parse_template,
)
from federation.tokens import ENTRA_AUDIENCE, Claims, check_audience, new_jti

MULTI_TEAM_MESSAGE = (
    "Cannot issue a team-scoped identity token: you belong to multiple teams. "
    "Select a team using the X-Warp-Team-Uid request header."
)


@dataclass(frozen=True)
class IssueRequest:
    """What a caller asks for; ``None`` takes the issuer's default."""

    run_id: str
    audience: str
    duration: str | None = None  # "2h30m"
    duration_seconds: int | None = None  # or whole seconds
    subject_template: Sequence[str] | None = None
    team_uid: str | None = None
    team_header: str | None = None  # X-Warp-Team-Uid
    workload_token: str | None = None
    algorithm: str | None = None
    aws_session_tags: Sequence[str] | None = None
    trace_id: str | None = None


class PrincipalFacts(Protocol):
    """Whom a token speaks for: the caller (a ``Caller``), or a run's principal."""

    @property
    def principal_uid(self) -> str: ...
    @property
    def principal_type(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def teams(self) -> Sequence[str]: ...


class RunFacts(Protocol):
    """What issuing reads of a run: a ``Run`` row, or the same columns read directly."""

    @property
    def run_id(self) -> str: ...
    @property
    def principal_uid(self) -> str: ...
    @property
    def team_uid(self) -> str | None: ...
    @property
    def environment(self) -> str | None: ...
    @property
    def agent_name(self) -> str | None: ...
    @property
    def skill_spec(self) -> str | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def state(self) -> str: ...
    @property
    def workload_token_hash(self) -> str: ...


AUDIT_COLUMNS = (
    "jti",
    "run_id",
    "principal_uid",
    "team_uid",
    "subject",
    "audience",
    "alg",
    "kid",
    "issued_at",
    "expires_at",
    "api_key_id",
    "trace_id",
)
AUDIT_INSERT = insert(AuditRow).values({name: bindparam(name) for name in AUDIT_COLUMNS})


def audit_values(caller: Caller, issued: IssuedToken, request: IssueRequest) -> dict[str, Any]:
    """The audit row of an issued token, by column."""
    claims = issued.claims
    return {
        "jti": claims.jti,
        "run_id": claims.run_id,
        "principal_uid": caller.principal_uid,
        "team_uid": claims.team,
        "subject": claims.subject,
        "audience": claims.audience,
        "alg": issued.alg,
        "kid": issued.kid,
        "issued_at": issued.issued_at,
        "expires_at": issued.expires_at,
        "api_key_id": caller.key_id,
        "trace_id": request.trace_id,
    }


@dataclass(frozen=True)
class Prepared:
    """Everything a token would hold, before it is signed: what a preview answers."""

    claims: Claims
    alg: str
    grant: Grant

    @property
    def header(self) -> dict[str, str]:
        """The protected header, but for the ``kid``, which only signing picks."""
        return {"alg": self.alg, "typ": "JWT"}


@dataclass(frozen=True)
class IssuedToken:
    """A signed token with the claims in it and the key that signed it."""

    token: str
    claims: Claims
    kid: str
    alg: str
    grant: Grant

    @property
    def issued_at(self) -> datetime:
        return datetime.fromtimestamp(self.claims.issued_at, UTC)

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.claims.expires_at, UTC)


class TokenIssuer:
    """Issues tokens for runs: the checks, the subject, the claims, the signature, the
    audit row. Built from settings with :meth:`from_settings`."""

    def __init__(
        self,
        *,
        issuer: str,
        keyring: Keyring,
        clock: Clock,
        durations: DurationPolicy,
        renderer: SubjectRenderer,
        default_alg: str = "ES256",
        audience_as_array: bool = True,
        require_workload_token: bool = True,
        clock_skew: int = 5,
        on_signed: Callable[[str, str], None] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.issuer = issuer
        self.keyring = keyring
        self.clock = clock
        self.durations = durations
        self.renderer = renderer
        self.default_alg = default_alg
        self.audience_as_array = audience_as_array
        self.require_workload_token = require_workload_token
        self.clock_skew = clock_skew
        self.on_signed = on_signed  # told (alg, audience) of every signed token: metrics
        self.limits = limits or Limits.off()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        keyring: Keyring,
        clock: Clock,
        *,
        on_signed: Callable[[str, str], None] | None = None,
        limits: Limits | None = None,
    ) -> TokenIssuer:
        return cls(
            issuer=settings.issuer,
            keyring=keyring,
            clock=clock,
            durations=settings.duration_policy(),
            renderer=SubjectRenderer(settings.subject_separator),
            default_alg=settings.signing_alg,
            audience_as_array=settings.audience_format == "array",
            require_workload_token=settings.require_workload_token,
            clock_skew=settings.clock_skew,
            on_signed=on_signed,
            limits=limits,
        )

    def issue(self, session: Session, caller: Caller, request: IssueRequest) -> IssuedToken:
        """Check, sign and audit. The caller commits the session before answering."""
        prepared = self.prepare(session, caller, request)
        issued = self.sign(prepared)
        # NOTE: an INSERT statement rather than a unit-of-work flush: nothing reads the
        # row back, and the flush costs more than the signature.
        session.execute(insert(AuditRow), [audit_values(caller, issued, request)])
        return issued

    def prepare(self, session: Session, caller: Caller, request: IssueRequest) -> Prepared:
        """Every check, and the claims a token would carry; nothing is signed or written.

        A preview answers this as it is, so that a client can test the claims against a
        cloud's policy before it asks for the token itself.
        """
        caller.require(Scope.FEDERATE)
        self.limits.key.take(caller.key_id)
        run = get_run(session, request.run_id, lock="share")
        return self.prepare_for(caller, run, request)

    def prepare_for(self, caller: Caller, run: RunFacts, request: IssueRequest) -> Prepared:
        """:meth:`prepare` once the run is read (and, on PostgreSQL, share-locked)."""
        self._check_run(caller, run, request.workload_token)
        prepared = self.claims_for(caller, run, request)
        self.limits.run.take(run.run_id)
        return prepared

    def claims_for(
        self, principal: PrincipalFacts, run: RunFacts, request: IssueRequest
    ) -> Prepared:
        """The team, template, audience, algorithm and duration checks, and the claims a
        token for ``principal`` in ``run`` would carry; who asks is checked before this."""
        template = parse_template(request.subject_template)
        needs_team = bool(TEAM_COMPONENTS & set(template))
        team = _team(principal, run, _selected_team(request), needs_team=needs_team)
        audience = check_audience(request.audience)
        alg = self._algorithm(request.algorithm, audience)
        grant = self.durations.grant(_requested_seconds(request))
        context = subject_context(principal, run, team)
        tags = session_tags(
            request.aws_session_tags,
            {
                "principal": f"{principal.principal_type}:{principal.principal_uid}",
                "team": team,
                "email": context.email,
                "environment": run.environment,
                "agent_name": run.agent_name,
                "skill_spec": run.skill_spec,
                "run_id": run.run_id,
                "host": run.host,
            },
        )
        claims = self.claims(context, template, audience, grant, tags)
        return Prepared(claims=claims, alg=alg, grant=grant)

    def claims(
        self,
        context: SubjectContext,
        template: Sequence[str],
        audience: str,
        grant: Grant,
        tags: dict[str, str] | None,
    ) -> Claims:
        """The claims for a run whose checks have passed: the subject rendered from
        ``template``, the times from the clock, a new ``jti``."""
        subject = self.renderer.render(template, context)
        check_length(subject, audience)
        now = self.clock.now()
        # NOTE: iat/nbf a few seconds in the past: GCP requires iat to be in the past,
        # and a verifier whose clock runs slightly behind ours must not see a future token.
        issued_at = int(now.timestamp()) - self.clock_skew
        return Claims(
            issuer=self.issuer,
            subject=subject,
            audience=audience,
            issued_at=issued_at,
            expires_at=issued_at + grant.seconds,
            jti=new_jti(),
            email=context.email,
            team=context.team,
            run_id=context.run_id,
            environment=context.environment,
            agent_name=context.agent_name,
            skill_spec=context.skill_spec,
            host=context.host,
            audience_as_array=self.audience_as_array,
            aws_tags=tags,
        )

    def sign(self, prepared: Prepared) -> IssuedToken:
        """Sign prepared claims with the algorithm's active key."""
        signer, header = self.keyring.signer(prepared.alg, self.clock.now())
        token = jws.encode(prepared.claims.to_dict(), signer, header)
        if self.on_signed is not None:
            self.on_signed(prepared.alg, prepared.claims.audience)
        return IssuedToken(
            token=token,
            claims=prepared.claims,
            kid=signer.kid,
            alg=prepared.alg,
            grant=prepared.grant,
        )

    def mint(
        self,
        context: SubjectContext,
        template: Sequence[str],
        audience: str,
        grant: Grant,
        *,
        alg: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> IssuedToken:
        """The in-process half of issuing, with no store: claims and subject for a run
        already checked, then the signature. What ``make bench`` compares with a raw
        signature on the same key."""
        claims = self.claims(context, template, audience, grant, tags)
        return self.sign(Prepared(claims=claims, alg=alg or self.default_alg, grant=grant))

    def _algorithm(self, requested: str | None, audience: str) -> str:
        if requested is not None and requested not in ALGORITHMS:
            raise InvalidRequest(f"algorithm must be one of {', '.join(ALGORITHMS)}")
        if audience == ENTRA_AUDIENCE:
            if requested not in (None, "RS256"):
                raise InvalidRequest(f"Microsoft Entra accepts only RS256 for {ENTRA_AUDIENCE}")
            return "RS256"
        return requested or self.default_alg

    def _check_run(self, caller: Caller, run: RunFacts, workload_token: str | None) -> None:
        if run.principal_uid != caller.principal_uid:
            raise NotAuthorized(f"run {run.run_id} belongs to another principal")
        if not workload_token:
            if self.require_workload_token:
                raise NotAuthorized(
                    "a token is issued only from inside its run: send the run's workload "
                    "token in the X-Warp-Ambient-Workload-Token header"
                )
        elif not secret_matches(workload_token, run.workload_token_hash):
            # NOTE: checked even when not required: a wrong token is never ignored.
            raise NotAuthorized(f"the workload token is not that of run {run.run_id}")
        refusal = state_refusal(run)
        if refusal is not None:
            raise refusal


def state_refusal(run: RunFacts) -> FederationError | None:
    """What issue-token answers for a run in a state that gets no tokens, if it is."""
    if run.state in WAITING:
        return Conflict(
            f"run {run.run_id} is {run.state}; tokens are issued once it is claimed",
            retryable=True,
        )
    if run.state in FINISHED:
        return OperationNotSupported(
            f"run {run.run_id} is {run.state}; a finished run gets no tokens"
        )
    return None


def subject_context(principal: PrincipalFacts, run: RunFacts, team: str | None) -> SubjectContext:
    """What a subject template renders from: the principal, the team, the run."""
    user = principal.principal_type == PrincipalType.USER
    return SubjectContext(
        principal_type=principal.principal_type,
        principal_uid=principal.principal_uid,
        run_id=run.run_id,
        email=principal.email if user else None,
        team=team,
        environment=run.environment,
        agent_name=run.agent_name,
        skill_spec=run.skill_spec,
        host=run.host,
    )


def _selected_team(request: IssueRequest) -> str | None:
    header, body = request.team_header, request.team_uid
    if header is not None and body is not None and header != body:
        raise InvalidRequest("X-Warp-Team-Uid and team_uid name different teams")
    return header or body


def _requested_seconds(request: IssueRequest) -> int | None:
    if request.duration is not None and request.duration_seconds is not None:
        raise InvalidRequest("give duration or requested_duration_seconds, not both")
    if request.duration is not None:
        return parse_duration(request.duration)
    return request.duration_seconds


def _team(
    principal: PrincipalFacts, run: RunFacts, selected: str | None, *, needs_team: bool
) -> str | None:
    """The team a token speaks for: the selected one, the run's, or the only one."""
    if selected is not None:
        if selected not in principal.teams:
            raise NotAuthorized(
                f"principal {principal.principal_uid} is not a member of team {selected}"
            )
        if run.team_uid is not None and selected != run.team_uid:
            raise InvalidRequest(
                f"run {run.run_id} is bound to team {run.team_uid}, not {selected}"
            )
        return selected
    if run.team_uid is not None:
        return run.team_uid
    if len(principal.teams) == 1:
        return principal.teams[0]
    if len(principal.teams) > 1 and needs_team:
        raise InvalidRequest(MULTI_TEAM_MESSAGE)
    return None
