"""The performance targets, each judged met or missed against one run's results.

A missed target is information, never a failure of the run: the numbers come from
whatever machine ran them, busy or not. Each target covers one or more measured points
(configurations, connection counts) and is judged on its worst one, so "met" means met
everywhere it covers; a target none of whose points was measured (PostgreSQL in a smoke
run, or unreachable) is "not measured", not missed.

The issue-token targets are on one worker: on two shared cores a second worker and the
load generator compete for the same CPU, so two workers are judged on the CPU each
request costs the server instead (:class:`benchmarks.results.Efficiency`), on
issue-token at every database and connection count, and on every two-worker issuer run
being balanced. Hello's own efficiency is shown beside it: what granian itself keeps.

The transparency log's cost is judged on one worker too: issue-token's throughput over
the same issuer's with its log off, at each database and connection count, the two
loaded in alternating slices (:class:`benchmarks.results.LogCost`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from benchmarks.plan import POSTGRESQL, SQLITE
from benchmarks.results import (
    HELLO,
    ISSUE_TOKEN,
    JWKS,
    MET,
    MINIMAL,
    MISSED,
    NOT_MEASURED,
    EndpointRun,
    LogCost,
    Point,
    Results,
    Target,
)

CONNECTIONS = 16  # where the latency targets and the SQLite throughput target are set
SQLITE_RATIO = 0.50
SQLITE_P99_RATIO = 2.5
POSTGRES_RATIO = 0.35
POSTGRES_P99_RATIO = 4.0
MINT_RATIO = 0.80
JWKS_RATIO = 0.90
EFFICIENCY = 0.90
LOG_RATIO = 0.90

# The names, as the issue's targets table words them.
SQLITE_THROUGHPUT = "issue-token / hello, SQLite, 1 worker, 16 conns (throughput)"
SQLITE_P99 = "issue-token p99 ÷ hello p99, 16 connections, SQLite"
POSTGRES_THROUGHPUT = "issue-token / hello, PostgreSQL, 1 worker"
POSTGRES_P99 = "issue-token p99 ÷ hello p99, 16 connections, PostgreSQL"
MINT = "in-process mint / raw ES256 signing (benchmarks.mint)"
JWKS_DOCUMENT = "jwks.json / hello"
TWO_WORKERS = "2 workers server CPU efficiency (req per CPU-s, 2w ÷ 1w)"
LOG_ON_OFF = "issue-token, log on / log off"

_Metric = Callable[[EndpointRun], float | None]


def evaluate(results: Results) -> list[Target]:
    """The targets, in the issue's order."""
    at_16 = (CONNECTIONS,)
    return [
        _issue_token(results, SQLITE_THROUGHPUT, SQLITE, _throughput, at_16, SQLITE_RATIO),
        _issue_token(results, SQLITE_P99, SQLITE, _p99, at_16, SQLITE_P99_RATIO),
        _issue_token(results, POSTGRES_THROUGHPUT, POSTGRESQL, _throughput, None, POSTGRES_RATIO),
        _issue_token(results, POSTGRES_P99, POSTGRESQL, _p99, at_16, POSTGRES_P99_RATIO),
        _mint(results),
        _jwks(results),
        _two_workers(results),
        _log_on_off(results),
    ]


def judge(
    name: str,
    points: list[tuple[str, float]],
    *,
    limit: float,
    at_most: bool = False,
    threshold: str | None = None,
    failing: Collection[str] = (),
    also: bool = True,
    detail: str = "",
) -> Target:
    """A target on its worst point; the points labelled in ``failing`` miss it whatever
    their value, and ``also`` is a further condition for the whole target."""

    def ok(value: float) -> bool:
        return value <= limit if at_most else value >= limit

    judged = [
        Point(label=label, value=value, met=ok(value) and label not in failing)
        for label, value in points
    ]
    worst = None
    if judged:
        worst = (max if at_most else min)(point.value for point in judged)
    status = NOT_MEASURED
    if worst is not None:
        status = MET if all(point.met for point in judged) and also else MISSED
    return Target(
        name=name,
        threshold=threshold or (f"≤ {limit:g}" if at_most else f"≥ {limit:.2f}"),
        limit=limit,
        at_most=at_most,
        value=worst,
        status=status,
        points=judged,
        detail=detail,
    )


def _throughput(run: EndpointRun) -> float | None:
    """Requests per second over hello's: at least the limit."""
    return run.ratio_to_hello


def _p99(run: EndpointRun) -> float | None:
    """p99 latency over hello's: at most the limit."""
    return run.p99_to_hello


def _issue_token(
    results: Results,
    name: str,
    database: str,
    metric: _Metric,
    connections: tuple[int, ...] | None,
    limit: float,
) -> Target:
    """issue-token against hello on one worker, at ``connections`` (None: every count
    measured)."""
    points: list[tuple[str, float]] = []
    why = f"{database} is not in this run's plan"
    for configuration in results.configurations:
        if configuration.database != database or configuration.workers != 1:
            continue
        why = configuration.skipped or configuration.error or "no issue-token run"
        for run in configuration.runs:
            value = metric(run)
            if run.endpoint != ISSUE_TOKEN or value is None:
                continue
            if connections is None or run.connections in connections:
                points.append((f"{run.connections} conns", value))
    at_most = metric is _p99
    detail = ", ".join(f"{label} {value:.2f}" for label, value in points) if points else why
    floor = _minimal(results, database, metric, connections)
    if points and floor:
        detail += f"; {floor}"
    return judge(name, points, limit=limit, at_most=at_most, detail=detail)


def _minimal(
    results: Results, database: str, metric: _Metric, connections: tuple[int, ...] | None
) -> str:
    """The minimal issuer's own value beside issue-token's, same database and
    connections: how far a plain Python issuer on this server setup got in the same run."""
    found = []
    for configuration in results.configurations:
        if configuration.database != database or configuration.workers != 1:
            continue
        for run in configuration.runs:
            if run.endpoint != MINIMAL or (connections and run.connections not in connections):
                continue
            issued = configuration.run(ISSUE_TOKEN, run.connections)
            floor, value = metric(run), metric(issued) if issued else None
            if floor and value:
                found.append(
                    f"the minimal issuer {floor:.2f} at {run.connections} conns"
                    f" (issue-token / minimal issuer {value / floor:.2f})"
                )
    return ", ".join(found)


def _mint(results: Results) -> Target:
    mint = results.mint
    points = [("mint / raw", mint.ratio)] if mint else []
    detail = (
        f"{mint.mint_per_s:,.0f} mints/s, {mint.raw_per_s:,.0f} signatures/s"
        if mint
        else "the mint benchmark failed"
    )
    return judge(MINT, points, limit=MINT_RATIO, detail=detail)


def _jwks(results: Results) -> Target:
    """Every configuration and connection count: the documents must stay near hello."""
    points = [
        (f"{configuration.database} {configuration.workers}w {run.connections}c", ratio)
        for configuration in results.configurations
        for run in configuration.runs
        if run.endpoint == JWKS and (ratio := run.ratio_to_hello) is not None
    ]
    detail = f"worst of {len(points)} runs" if points else ""
    return judge(JWKS_DOCUMENT, points, limit=JWKS_RATIO, threshold="keep ≥ 0.90", detail=detail)


def _two_workers(results: Results) -> Target:
    """issue-token's efficiency everywhere measured, and every two-worker issuer run
    balanced (each worker at least 0.35 of the workers' CPU time): a point, one database
    at one connection count, misses when any of its issuer runs was unbalanced."""
    runs = [
        (configuration.database, run.connections, run.cpu.balance)
        for configuration in results.configurations
        if configuration.workers > 1
        for run in configuration.runs
        if run.endpoint != HELLO and run.cpu is not None
    ]
    unbalanced = {(database, connections) for database, connections, b in runs if not b.balanced}
    points: list[tuple[str, float]] = []
    failing: list[str] = []
    for e in results.efficiency:
        if e.endpoint == ISSUE_TOKEN:
            label = f"{e.database} {e.connections} conns"
            if (e.database, e.connections) in unbalanced:
                label += ", unbalanced"
                failing.append(label)
            points.append((label, e.ratio))
    balanced = sum(1 for _, _, b in runs if b.balanced)
    lowest = min((min(b.shares) for _, _, b in runs if b.shares), default=None)
    notes = [f"balanced {balanced} of {len(runs)} issuer runs"]
    if lowest is not None:
        notes[0] += f" (lowest worker share {lowest:.3f})"
    hello = [e.ratio for e in results.efficiency if e.endpoint == HELLO]
    if hello:
        low, high = f"{min(hello):.2f}", f"{max(hello):.2f}"
        notes.append(f"hello itself {low}" + (f" to {high}" if high != low else ""))
    return judge(
        TWO_WORKERS,
        points,
        limit=EFFICIENCY,
        threshold="≥ 0.90, balanced",
        failing=failing,
        also=bool(runs) and balanced == len(runs),
        detail="; ".join(notes),
    )


@dataclass(frozen=True)
class LogPoint:
    """One :class:`~benchmarks.results.LogCost` and where it was measured."""

    database: str
    cost: LogCost

    @property
    def label(self) -> str:
        return f"{self.database} {self.cost.connections} conns"


def log_points(results: Results) -> list[LogPoint]:
    """Every log-on / log-off comparison measured (one worker), in order."""
    return [
        LogPoint(configuration.database, cost)
        for configuration in results.configurations
        if configuration.workers == 1
        for cost in configuration.log_cost
        if cost.ratio is not None
    ]


def _log_on_off(results: Results) -> Target:
    """What the transparency log costs issue-token: at least the limit everywhere."""
    found = log_points(results)
    points = [(point.label, point.cost.ratio) for point in found if point.cost.ratio is not None]
    detail = ", ".join(
        f"{point.label} {point.cost.ratio or 0:.2f} ({point.cost.on.requests_per_s:,.0f} / "
        f"{point.cost.off.requests_per_s:,.0f} req/s)"
        for point in found
    )
    return judge(LOG_ON_OFF, points, limit=LOG_RATIO, detail=detail or "no log-off issuer ran")
