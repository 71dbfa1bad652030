"""The results of one benchmark run: what the suite measures and the report writes.

Plain dataclasses, so that ``latest.json`` is their ``asdict`` and the Markdown, the
chart and the targets all read the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from benchmarks.load import LoadResult
from benchmarks.machine import Machine
from benchmarks.plan import Plan
from benchmarks.workers import ServerCpu

# NOTE: for annotations only, so that results can be judged without importing the issuer
if TYPE_CHECKING:
    from benchmarks.mint import MintResult
    from benchmarks.stages import StageBreakdown

HELLO = "hello"
# The minimal issuer (benchmarks.minimal): issue-token's essential work and nothing else
MINIMAL = "minimal"
ISSUE_TOKEN = "issue-token"  # noqa: S105 - an endpoint's name
JWKS = "jwks"
DISCOVERY = "discovery"
ENDPOINTS = (HELLO, MINIMAL, ISSUE_TOKEN, JWKS, DISCOVERY)
ISSUER_ENDPOINTS = (ISSUE_TOKEN, JWKS, DISCOVERY)


@dataclass(frozen=True)
class AuditCheck:
    """Audit rows written during an issue-token run (or runs), against the answers wrk
    counted: at least one per answer below 400, and at most that plus the requests in
    flight at the end of each run (``connections``, summed over the runs); and the
    transparency log's entries, read with the rows: as many (the issuer logs), or none
    (its log is off)."""

    before: int
    after: int
    grew: int
    ok_answers: int
    connections: int
    log_entries: int
    logged: bool  # the issuer's transparency log is on
    ok: bool


@dataclass(frozen=True)
class DeletedKeyCheck:
    """Issue-token requests sent right after the benchmark's key was deleted."""

    statuses: list[int]
    ok: bool  # every one answered 401


@dataclass(frozen=True)
class EndpointRun:
    """One endpoint loaded at one connection count; the ratios are to the hello run
    just before it (same configuration and connections), None for hello itself."""

    endpoint: str
    path: str
    connections: int
    load: LoadResult
    ratio_to_hello: float | None  # requests per second
    p99_to_hello: float | None  # p99 latency
    cpu: ServerCpu | None  # the server's process tree over the timed run
    requests_per_cpu_s: float | None  # requests answered per server CPU-second
    audit: AuditCheck | None


@dataclass(frozen=True)
class LogSide:
    """issue-token at one of the two issuers of a :class:`LogCost`, its slices summed."""

    logged: bool  # the issuer's transparency log is on
    slices: list[LoadResult]
    requests: int
    seconds: float  # wrk's own measured time, summed
    requests_per_s: float
    cpu_seconds: float  # the server's, over its slices
    requests_per_cpu_s: float | None
    errors: int
    audit: AuditCheck


@dataclass(frozen=True)
class LogCost:
    """What the transparency log costs issue-token, at one connection count on one
    worker: the issuer (its log on) and the same issuer with its log off, loaded in
    alternating slices (on, off, off, on, ...), each side a timed run's time in all."""

    connections: int
    on: LogSide
    off: LogSide
    ratio: float | None  # requests per second, on / off
    cpu_ratio: float | None  # requests per server CPU-second, on / off


@dataclass
class Configuration:
    """One server configuration: a database and a number of workers."""

    database: str
    workers: int
    runs: list[EndpointRun] = field(default_factory=list)
    log_cost: list[LogCost] = field(default_factory=list)  # one worker only
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
class Efficiency:
    """Server CPU efficiency of two workers: requests per server CPU-second with two
    workers over the same with one, same database, endpoint and connections. 1.0: the
    second worker costs nothing beyond the requests it serves. Unlike throughput, it
    does not depend on how much of the two cores the load generator leaves the server."""

    database: str
    endpoint: str
    connections: int
    one_worker: float  # requests per server CPU-second
    two_workers: float
    ratio: float
    shares: list[float]  # each worker's share of the two-worker run's worker CPU time
    balanced: bool


@dataclass(frozen=True)
class Point:
    """One measured value a target covers, e.g. one configuration's ratio."""

    label: str
    value: float
    met: bool


MET = "met"
MISSED = "missed"
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Target:
    """A target judged on its worst point (``value``): met means met everywhere."""

    name: str
    threshold: str  # as printed, e.g. "≥ 0.50"
    limit: float
    at_most: bool  # the value must stay at or below the limit (latency), not above it
    value: float | None  # the worst point; None when nothing it covers was measured
    status: str  # MET, MISSED or NOT_MEASURED
    points: list[Point] = field(default_factory=list)
    detail: str = ""

    @property
    def met(self) -> bool:
        return self.status == MET


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
    efficiency: list[Efficiency] = field(default_factory=list)
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


def efficiency(configurations: list[Configuration]) -> list[Efficiency]:
    """2-worker / 1-worker requests per server CPU-second, per database, endpoint and
    connection count."""
    found: list[Efficiency] = []
    by_key = {(c.database, c.workers): c for c in configurations if not c.skipped}
    for (database, workers), two in by_key.items():
        one = by_key.get((database, 1))
        if workers != 2 or one is None:
            continue
        for run in two.runs:
            base = one.run(run.endpoint, run.connections)
            if base is None or not base.requests_per_cpu_s or not run.requests_per_cpu_s:
                continue
            found.append(
                Efficiency(
                    database=database,
                    endpoint=run.endpoint,
                    connections=run.connections,
                    one_worker=base.requests_per_cpu_s,
                    two_workers=run.requests_per_cpu_s,
                    ratio=round(run.requests_per_cpu_s / base.requests_per_cpu_s, 3),
                    shares=run.cpu.balance.shares if run.cpu else [],
                    balanced=run.cpu is not None and run.cpu.balance.balanced,
                )
            )
    return found


def checks(configurations: list[Configuration]) -> Checks:
    measured = [c for c in configurations if not c.skipped]
    audits = [r.audit for c in measured for r in c.runs if r.audit is not None]
    audits += [side.audit for c in measured for cost in c.log_cost for side in (cost.on, cost.off)]
    deleted = [c.deleted_key for c in measured]
    return Checks(
        audit=bool(audits) and all(a.ok for a in audits),
        deleted_key=bool(deleted) and all(d is not None and d.ok for d in deleted),
    )
