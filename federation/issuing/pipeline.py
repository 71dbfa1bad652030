"""Issuing a token for a run: the one pipeline that every protocol goes through.

REST (``issue-token``, ``preview-token``), GraphQL, the broker, an operator's preview of
a run (the console's Try it) and the CLI's ``--check-*`` all reach :class:`TokenIssuer`
with one :class:`IssueRequest`. It alone calls the signer and writes audit rows, and it
reads and writes the database only through the issuing port
(``federation.store.issuing``).

Who may get a token for a run is checked in this order (docs/concepts.md), the first failure
answering: the API key (401), its scope (403), the key's rate limit (429), the run
exists (404), the key's principal is the run's principal (403), the run's workload token
(403), the run's state (409 while waiting, 422 once finished), then the team (400 when
ambiguous). Only then are the template, audience, algorithm and duration looked at; then
the run's rate limit (429), so that no one but the run's own principal can spend its
tokens; then the signature, and the audit row, committed (with the rows of concurrent
requests) before the token is returned. The commit re-reads the run's state, locked
against a concurrent end: a run that finished meanwhile gets no token.

The commit also reads the signing key's stop, locked against a concurrent retire or
revoke (in the same transaction where the key store is the database; under the keys
directory's lock for the file store): a token whose key was stopped, perhaps at another
replica whose keyring this one has not read yet, is not recorded and never leaves. The
keyring is read again at once and the claims signed with the key that signs now, and
recorded; should that fail too, the answer is ``503`` (retryable).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from federation.clock import Clock
from federation.domain.durations import DurationPolicy, parse_duration
from federation.domain.run_states import FINISHED, WAITING
from federation.domain.session_tags import session_tags
from federation.domain.subjects import (
    COMPONENTS,
    TEAM_COMPONENTS,
    SubjectContext,
    SubjectRenderer,
    parse_template,
)
from federation.domain.tokens import ENTRA_AUDIENCE, check_audience
from federation.errors import (
    Conflict,
    FederationError,
    InvalidRequest,
    NotAuthorized,
    OperationNotSupported,
    ResourceNotFound,
    ResourceUnavailable,
)
from federation.issuing.minting import IssuedToken, Minter, Prepared
from federation.keys import ALGORITHMS, Keyring
from federation.keys.stops import recording_stops
from federation.rate_limits import Limits
from federation.registry.auth import (
    Caller,
    PrincipalType,
    Scope,
    caller_of,
    checked_key,
    last_used_due,
    presented_digest,
    secret_matches,
)
from federation.registry.runs import run_not_found
from federation.settings import Settings
from federation.store.issuing import AuditEntry, GroupCommit, IssueStore
from federation.store.issuing.group_commit import KeyStops
from federation.store.issuing.port import LoggedToken
from federation.transparency.entries import LogEntry, token_sha256

# A stop of a signing key refuses the rows of the tokens it signed that are recorded
# after it, and also when its time lies up to this far after their signing: the most
# that the clocks of two replicas may disagree, plus the longest a row waits for its
# commit. Only a stop set further ahead (by hand) is left to its time.
STOP_LEEWAY = timedelta(minutes=1)

MULTI_TEAM_MESSAGE = (
    "Cannot issue a team-scoped identity token: you belong to multiple teams. "
    "Select a team using the X-Warp-Team-Uid request header."
)


@dataclass(frozen=True)
class IssueRequest:
    """What a caller asks for; ``None`` takes the issuer's default. Built by
    ``federation.api.requests.issue_request`` alone, after its input limits."""

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
    """What issuing reads of a run (a row of the issuing port's ``RUN_QUERY``)."""

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


@dataclass(frozen=True)
class _Read:
    """A run already read with the caller (``None``: there is no such run)."""

    run: RunFacts | None


@dataclass(frozen=True)
class RunPrincipal:
    """A run's principal, as a token for the run would speak for it."""

    principal_uid: str
    principal_type: str
    email: str | None
    teams: tuple[str, ...]


@dataclass(frozen=True)
class RunPreview:
    """An operator's dry run: the claims the run's principal would get, whether the
    run's state lets a token be issued now, and each subject component alone."""

    prepared: Prepared
    refusal: FederationError | None  # what issue-token answers for the run's state now
    components: dict[str, str | None]  # each component alone; None where the run lacks it


class TokenIssuer:
    """The issuing pipeline. Built from settings with :meth:`from_settings`; one per
    application (its group commit batches that application's requests)."""

    def __init__(
        self,
        *,
        store: IssueStore,
        minter: Minter,
        clock: Clock,
        durations: DurationPolicy,
        require_workload_token: bool = True,
        on_signed: Callable[[str, str], None] | None = None,
        limits: Limits | None = None,
        key_stops: KeyStops | None = None,
        transparency_log: bool = False,
    ) -> None:
        self.store = store
        self.minter = minter
        self.clock = clock
        self.durations = durations
        self.require_workload_token = require_workload_token
        self.on_signed = on_signed  # told (alg, audience) of every issued token: metrics
        self.limits = limits or Limits.off()
        self.transparency_log = transparency_log  # every token's entry appended with its row
        # key_stops: the stops of keys kept outside the database (the file key store)
        self.audit = GroupCommit(store, _ended_meanwhile, key_stops)
        self._reloads = 0  # keyring reloads started after a stopped key (see _reloaded)
        self._reloading: asyncio.Future[None] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: IssueStore,
        keyring: Keyring,
        clock: Clock,
        *,
        on_signed: Callable[[str, str], None] | None = None,
        limits: Limits | None = None,
    ) -> TokenIssuer:
        minter = Minter.from_settings(settings, keyring, clock)
        return cls(
            store=store,
            minter=minter,
            clock=clock,
            durations=settings.duration_policy(),
            require_workload_token=settings.require_workload_token,
            on_signed=on_signed,
            limits=limits,
            key_stops=recording_stops(keyring.store),
            transparency_log=settings.transparency_log,
        )

    @property
    def renderer(self) -> SubjectRenderer:
        return self.minter.renderer

    async def authenticate(self, presented: str | None) -> Caller:
        """The caller behind an API key, or 401 for anything else."""
        digest = presented_digest(presented)
        return await self._caller(await self.store.caller(digest), digest)

    async def issue_for_key(
        self,
        presented: str | None,
        request: IssueRequest,
        note: Callable[[Caller], None] | None = None,
    ) -> IssuedToken:
        """:meth:`authenticate`, then :meth:`issue`, with the key and the run read
        together (issue-token's path; ``note`` learns the caller once it is known)."""
        digest = presented_digest(presented)
        key, run = await self.store.caller_and_run(digest, request.run_id)
        caller = await self._caller(key, digest)
        if note is not None:
            note(caller)
        return await self._issue(caller, request, _Read(run))

    async def _caller(self, key: Any, digest: str) -> Caller:
        now = self.clock.now()
        key = checked_key(key, digest, now)
        if last_used_due(key, now):
            # NOTE: with the next batch of audit rows, before anything can refuse this
            # request, so that a refused request still leaves its trace (once a minute).
            await self.audit.touch(key.seq, now)
        return caller_of(key)

    async def issue(self, caller: Caller, request: IssueRequest) -> IssuedToken:
        """Every check, the signature, and the audit row, committed before this returns."""
        return await self._issue(caller, request, None)

    async def _issue(
        self, caller: Caller, request: IssueRequest, read: _Read | None
    ) -> IssuedToken:
        prepared = await self._prepare(caller, request, read)
        issued = self.minter.sign(prepared)
        if not await self.audit.record(self._entry(caller, issued, request)):
            issued = await self._signed_again(caller, request, prepared, issued.kid)
        if self.on_signed is not None:
            self.on_signed(issued.alg, issued.claims.audience)
        return issued

    def _entry(self, caller: Caller, issued: IssuedToken, request: IssueRequest) -> AuditEntry:
        return audit_entry(
            caller,
            issued,
            request,
            stopped_by=self.clock.now() + STOP_LEEWAY,
            logged=self.transparency_log,
        )

    async def _signed_again(
        self, caller: Caller, request: IssueRequest, prepared: Prepared, stopped: str
    ) -> IssuedToken:
        """The key ``stopped`` signed, but was retired or revoked before the token's row
        committed: nothing was written and the token is dropped. Sign the same claims
        with the key that signs now, once the keyring has been read again, and record
        that; once, then ``503``."""
        await self._reloaded(self._reloads)
        issued = self.minter.sign(prepared)
        if issued.kid != stopped and await self.audit.record(self._entry(caller, issued, request)):
            return issued
        raise ResourceUnavailable(
            f"signing key {stopped} was retired or revoked while this token was issued; try again",
            headers={"Retry-After": "1"},
        )

    async def _reloaded(self, seen: int) -> None:
        """Return once a keyring reload that started after the caller's refusal (when
        ``seen`` reloads had started) has ended: one reload serves every request refused
        meanwhile. The store is read off the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            reloading = self._reloading
            # NOTE: a reload of another event loop (a test client's previous one) is gone
            if reloading is None or reloading.done() or reloading.get_loop() is not loop:
                self._reloads += 1
                reloading = self._reloading = asyncio.ensure_future(
                    asyncio.to_thread(self.minter.keyring.reload)
                )
                await asyncio.shield(reloading)
                return
            started_after = self._reloads > seen
            await asyncio.shield(reloading)
            if started_after:
                return

    async def prepare(self, caller: Caller, request: IssueRequest) -> Prepared:
        """Every check, and the claims a token would carry; nothing is signed or written.

        A preview answers this as it is, so that a client can test the claims against a
        cloud's policy before it asks for the token itself.
        """
        return await self._prepare(caller, request, None)

    async def _prepare(self, caller: Caller, request: IssueRequest, read: _Read | None) -> Prepared:
        caller.require(Scope.FEDERATE)
        self.limits.key.take(caller.key_id)  # NOTE: refused before the run is looked at
        if read is None:
            run = await self._run(request.run_id)
        elif read.run is None:
            raise run_not_found(request.run_id)
        else:
            run = read.run
        self._check_run(caller, run, request.workload_token)
        prepared = self.claims_for(caller, run, request)
        self.limits.run.take(run.run_id)
        return prepared

    async def preview_run(self, caller: Caller, request: IssueRequest) -> RunPreview:
        """An operator's (``runs:write``) dry run of a run's tokens: the claims as the
        run's principal would get them, whatever the run's state; no workload token."""
        caller.require(Scope.RUNS_WRITE)
        self.limits.key.take(caller.key_id)
        run = await self._run(request.run_id)
        row = await self.store.principal(run.principal_uid)
        if row is None:
            raise ResourceNotFound(f"principal {run.principal_uid} not found")
        principal = RunPrincipal(row.principal_uid, row.principal_type, row.email, tuple(row.teams))
        prepared = self.claims_for(principal, run, request)
        return RunPreview(
            prepared=prepared,
            refusal=state_refusal(run),
            components=subject_components(self.renderer, principal, run, prepared.claims.team),
        )

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
        claims = self.minter.claims(context, template, audience, grant, tags)
        return Prepared(claims=claims, alg=alg, grant=grant)

    async def _run(self, run_id: str) -> RunFacts:
        run: RunFacts | None = await self.store.run(run_id)
        if run is None:
            raise run_not_found(run_id)
        return run

    def _algorithm(self, requested: str | None, audience: str) -> str:
        if requested is not None and requested not in ALGORITHMS:
            raise InvalidRequest(f"algorithm must be one of {', '.join(ALGORITHMS)}")
        if audience == ENTRA_AUDIENCE:
            if requested not in (None, "RS256"):
                raise InvalidRequest(f"Microsoft Entra accepts only RS256 for {ENTRA_AUDIENCE}")
            return "RS256"
        return requested or self.minter.default_alg

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


def audit_entry(
    caller: Caller,
    issued: IssuedToken,
    request: IssueRequest,
    *,
    stopped_by: datetime | None = None,
    logged: bool = False,
) -> AuditEntry:
    """The audit row of an issued token, by column (``stopped_by``: see
    :class:`~federation.store.issuing.AuditEntry`), with its transparency log entry
    when ``logged``."""
    claims = issued.claims
    return AuditEntry(
        {
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
        },
        stopped_by=stopped_by,
        logged=log_entry(caller, issued) if logged else None,
    )


def log_entry(caller: Caller, issued: IssuedToken) -> LoggedToken:
    """The transparency log's entry of an issued token (never the token, no email)."""
    claims = issued.claims
    digest = token_sha256(issued.token)
    entry = LogEntry(
        jti=claims.jti,
        iss=claims.issuer,
        sub=claims.subject,
        aud=claims.audience,
        iat=claims.issued_at,
        exp=claims.expires_at,
        kid=issued.kid,
        alg=issued.alg,
        run_id=claims.run_id,
        principal=caller.principal_uid,
        team=claims.team,
        token_sha256=digest,
    )
    return LoggedToken(entry.encode(), digest)


def _ended_meanwhile(run_id: str, state: str) -> FederationError:
    """What a request answers whose run finished (or vanished) before its row committed."""
    return _state_refusal(run_id, state) or run_not_found(run_id)


def subject_components(
    renderer: SubjectRenderer, principal: PrincipalFacts, run: RunFacts, team: str | None
) -> dict[str, str | None]:
    """Each template component rendered alone for ``run``, in the order of the
    subject template table (docs/concepts.md)."""
    context = subject_context(principal, run, team)
    rendered: dict[str, str | None] = {}
    for name in COMPONENTS:
        try:
            rendered[name] = renderer.render((name,), context)
        except InvalidRequest:
            rendered[name] = None
    return rendered


def state_refusal(run: RunFacts) -> FederationError | None:
    """What issue-token answers for a run in a state that gets no tokens, if it is."""
    return _state_refusal(run.run_id, run.state)


def _state_refusal(run_id: str, state: str) -> FederationError | None:
    if state in WAITING:
        return Conflict(
            f"run {run_id} is {state}; tokens are issued once it is claimed", retryable=True
        )
    if state in FINISHED:
        return OperationNotSupported(f"run {run_id} is {state}; a finished run gets no tokens")
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
