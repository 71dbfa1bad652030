"""The results of one benchmark run: what the suite measures and the report writes.

Plain dataclasses, so that ``latest.json`` is their ``asdict`` and the Markdown, the
chart and the targets all read the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.load import LoadResult
from benchmarks.machine import Machine
from benchmarks.mint import MintResult
from benchmarks.plan import Plan
from benchmarks.stages import StageBreakdown
from benchmarks.workers import Balance

HELLO = "hello"
ISSUE_TOKEN = "issue-token"  # noqa: S105 - an endpoint's name
JWKS = "jwks"
DISCOVERY = "discovery"
ENDPOINTS = (HELLO, ISSUE_TOKEN, JWKS, DISCOVERY)
ISSUER_ENDPOINTS = (ISSUE_TOKEN, JWKS, DISCOVERY)


@dataclass(frozen=True)
class AuditCheck:
    """Audit rows written during an issue-token run, against the answers wrk counted:
    at least one per answer below 400, and at most that plus the requests in flight."""

    before: int
    after: int
    grew: int
    ok_answers: int
    connections: int
    ok: bool


@dataclass(frozen=True)
class DeletedKeyCheck:
    """Issue-token requests sent right after the benchmark's key was deleted."""

    statuses: list[int]
    ok: bool  # every one answered 401


@dataclass(frozen=True)
class EndpointRun:
    endpoint: str
    path: str
    connections: int
    load: LoadResult
    ratio_to_hello: float | None
    balance: Balance | None
    audit: AuditCheck | None


@dataclass
class Configuration:
    """One server configuration: a database and a number of workers."""

    database: str
    workers: int
    runs: list[EndpointRun] = field(default_factory=list)
    deleted_key: DeletedKeyCheck | None = None
    skipped: str | None = None  # why it was not measured (e.g. no PostgreSQL)
    error: str | None = None  # a failure of the harness or a server, not a missed target

    @property
    def label(self) -> str:
        return f"{self.database}, {self.workers} worker{'s' if self.workers > 1 else ''}"

    def run(self, endpoint: str, connections: int) -> EndpointRun | None:
        for found in self.runs:
            if found.endpoint == endpoint and found.connections == connections:
                return found
        return None


@dataclass(frozen=True)
class Scaling:
    """Throughput with two workers over throughput with one, same everything else."""

    database: str
    endpoint: str
    connections: int
    ratio: float


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    threshold: str
    met: bool
    detail: str = ""


@dataclass(frozen=True)
class Checks:
    audit: bool
    deleted_key: bool


@dataclass
class Results:
    machine: Machine
    plan: Plan
    mint: MintResult | None
    configurations: list[Configuration]
    stages: list[StageBreakdown] = field(default_factory=list)  # one per database
    scaling: list[Scaling] = field(default_factory=list)
    checks: Checks = field(default_factory=lambda: Checks(audit=False, deleted_key=False))
    targets: list[Target] = field(default_factory=list)
    elapsed_s: float = 0.0
    load_average_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def failed(self) -> bool:
        """The harness itself failed somewhere (not: a target was missed)."""
        return (
            self.mint is None
            or any(c.error for c in self.configurations)
            or any(s.error for s in self.stages)
        )


def scaling(configurations: list[Configuration]) -> list[Scaling]:
    """2-worker / 1-worker throughput per database, endpoint and connection count."""
    found: list[Scaling] = []
    by_key = {(c.database, c.workers): c for c in configurations if not c.skipped}
    for (database, workers), two in by_key.items():
        one = by_key.get((database, 1))
        if workers != 2 or one is None:
            continue
        for run in two.runs:
            base = one.run(run.endpoint, run.connections)
            if base is None or base.load.requests_per_s <= 0:
                continue
            found.append(
                Scaling(
                    database=database,
                    endpoint=run.endpoint,
                    connections=run.connections,
                    ratio=round(run.load.requests_per_s / base.load.requests_per_s, 3),
                )
            )
    return found


def checks(configurations: list[Configuration]) -> Checks:
    measured = [c for c in configurations if not c.skipped]
    audits = [r.audit for c in measured for r in c.runs if r.audit is not None]
    deleted = [c.deleted_key for c in measured]
    return Checks(
        audit=bool(audits) and all(a.ok for a in audits),
        deleted_key=bool(deleted) and all(d is not None and d.ok for d in deleted),
    )
