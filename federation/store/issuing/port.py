"""What issuing needs of the database, and nothing more: the port its pipeline talks
to, with one adapter per database family (``sqlite``, ``postgres``).

Reads answer rows of the statements below, compiled once for the adapter's dialect by
SQLAlchemy (``federation.store.direct``): nothing here is hand-written SQL, and the ORM
is kept off the hot path. Writes go through :meth:`IssueStore.record`, which the group
commit (``group_commit``) calls with every audit row and ``last_used_at`` touch that
arrived while the previous batch was committing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Insert, Select, bindparam, insert, select, update

from federation.store.lineage import revoked_ancestry
from federation.store.models import ApiKey, Principal, Run, SigningKey
from federation.store.models import IssuedToken as AuditRow

# The caller behind an API key, by the key's SHA-256: the key and its principal.
CALLER_QUERY = (
    select(
        ApiKey.seq,
        ApiKey.id,
        ApiKey.name,
        ApiKey.type,
        ApiKey.last4,
        ApiKey.key_hash,
        ApiKey.scopes,
        ApiKey.expires_at,
        ApiKey.last_used_at,
        Principal.uid.label("principal_uid"),
        Principal.type.label("principal_type"),
        Principal.email,
        Principal.display_name,
        Principal.teams,
    )
    .join(Principal, Principal.uid == ApiKey.principal_uid)
    .where(
        ApiKey.key_hash == bindparam("digest"),
        ApiKey.deleted_at.is_(None),
        # NOTE: nor any key above it (``federation.store.lineage``)
        ~revoked_ancestry("key_hash", bindparam("digest")),
    )
)
LAST_USED_UPDATE = (
    update(ApiKey).where(ApiKey.seq == bindparam("key_seq")).values(last_used_at=bindparam("now"))
)
# What issuing reads of a run.
RUN_QUERY = select(
    Run.run_id,
    Run.principal_uid,
    Run.team_uid,
    Run.environment,
    Run.agent_name,
    Run.skill_spec,
    Run.host,
    Run.state,
    Run.workload_token_hash,
).where(Run.run_id == bindparam("run_id"))
# A run's principal, for an operator's preview of the run's tokens.
PRINCIPAL_QUERY = select(
    Principal.uid.label("principal_uid"),
    Principal.type.label("principal_type"),
    Principal.email,
    Principal.teams,
).where(Principal.uid == bindparam("uid"))

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


def audit_insert(rows: int) -> Insert:
    """One INSERT of ``rows`` audit rows; row ``i``'s values are bound as ``<column>_<i>``
    (``log_idx``: the index of the token's transparency log entry, set by the batch)."""
    return insert(AuditRow).values(
        [
            {name: bindparam(f"{name}_{i}") for name in (*AUDIT_COLUMNS, "log_idx")}
            for i in range(rows)
        ]
    )


def run_states_query(runs: int, *, share_lock: bool) -> Select[str, str]:
    """The states of ``runs`` runs (bound as ``run_<i>``), share-locked on PostgreSQL so
    that a run's end cannot commit between this read and the batch's commit."""
    statement = select(Run.run_id, Run.state).where(
        Run.run_id.in_([bindparam(f"run_{i}") for i in range(runs)])
    )
    return statement.with_for_update(read=True) if share_lock else statement


def key_stops_query(
    kids: int, *, share_lock: bool
) -> Select[str, datetime | None, datetime | None]:
    """When ``kids`` signing keys (bound as ``kid_<i>``) were retired and revoked, for
    the keys kept in the database: share-locked on PostgreSQL, every row of them (not
    only the stopped ones), so that no retire or revoke commits between this read and
    the batch's commit. SQLite's batch holds the database's write lock already."""
    statement = select(SigningKey.kid, SigningKey.retired_at, SigningKey.revoked_at).where(
        SigningKey.kid.in_([bindparam(f"kid_{i}") for i in range(kids)])
    )
    return statement.with_for_update(read=True) if share_lock else statement


@dataclass(frozen=True, slots=True)
class LoggedToken:
    """What the transparency log keeps of an issued token: its entry's canonical bytes
    (``federation.transparency.LogEntry``) and the SHA-256 of the token (hex)."""

    entry: bytes
    token_sha256: str


@dataclass(frozen=True)
class AuditEntry:
    """The audit row of one issued token, by column; never the token itself.

    ``stopped_by``: a stop of the token's signing key (retired or revoked) at or before
    this time refuses the row (``None``: any stop does); a later stop is one set ahead,
    which the keyring honours at its time. ``logged``: the token's transparency log
    entry, appended in the same transaction as the row (``None``: the log is off)."""

    values: Mapping[str, Any]
    stopped_by: datetime | None = None
    logged: LoggedToken | None = None

    @property
    def run_id(self) -> str:
        run_id: str = self.values["run_id"]
        return run_id

    @property
    def jti(self) -> str:
        jti: str = self.values["jti"]
        return jti

    @property
    def kid(self) -> str:
        kid: str = self.values["kid"]
        return kid


@dataclass(frozen=True)
class Refusals:
    """The rows of a batch that were not inserted, and why."""

    # run id -> its state, for the runs that finished (or vanished: ``""``) meanwhile
    ended: dict[str, str] = field(default_factory=dict)
    # the jtis of the tokens whose signing key was stopped before the commit
    withdrawn: frozenset[str] = frozenset()


def withdrawn(entries: Sequence[AuditEntry], stops: Mapping[str, datetime]) -> frozenset[str]:
    """The jtis of ``entries`` whose signing key is stopped, by ``stops`` (kid -> when
    it stopped signing: retired or revoked, the earlier)."""
    found = set()
    for entry in entries:
        stop = stops.get(entry.kid)
        if stop is not None and (entry.stopped_by is None or stop <= entry.stopped_by):
            found.add(entry.jti)
    return frozenset(found)


def stops_of(rows: Sequence[Any]) -> dict[str, datetime]:
    """``key_stops_query``'s rows (processed) as kid -> when the key stopped signing."""
    found = {}
    for kid, retired_at, revoked_at in rows:
        times = [t for t in (retired_at, revoked_at) if t is not None]
        if times:
            found[kid] = min(times)
    return found


class IssueStore(Protocol):
    """The database as issuing sees it."""

    dialect: str

    async def caller(self, digest: str) -> Any:
        """The row of ``CALLER_QUERY`` for a live (not deleted) key, or ``None``."""
        ...

    async def run(self, run_id: str) -> Any:
        """The row of ``RUN_QUERY``, or ``None``."""
        ...

    async def caller_and_run(self, digest: str, run_id: str) -> tuple[Any, Any]:
        """:meth:`caller` and :meth:`run` together (one round trip where the database
        allows): issue-token's reads. Reading the run before the key is checked changes
        no answer: nothing is locked or written, and the key is still checked first."""
        ...

    async def principal(self, uid: str) -> Any:
        """The row of ``PRINCIPAL_QUERY``, or ``None``."""
        ...

    async def record(
        self, entries: Sequence[AuditEntry], touches: Mapping[int, datetime]
    ) -> Refusals:
        """In one transaction: read the state of every run of ``entries`` and the stops
        of their signing keys kept in the database (both locked against a concurrent
        change), insert the rows whose run has not finished and whose key was not
        stopped, set ``last_used_at`` of the keys in ``touches`` (key seq -> time),
        commit (on disk once :meth:`flushed` returns). Answers the rows *not* inserted:
        the state of each run that finished (or vanished: state ``""``), and the jtis of
        the tokens whose key was stopped (:func:`withdrawn`). Raises when nothing is
        known to be committed."""
        ...

    async def flushed(self) -> None:
        """Return once every commit made so far is on disk; at once where a commit
        returns only when it is (PostgreSQL with ``synchronous_commit``)."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
