"""One benchmark run: the mint measurement, the in-process stage breakdown of one
issue-token request per database, then every server configuration in turn.

For each database, every configuration (the database and a number of workers) gets its
issuer and its hello baseline, all started side by side; one worker also gets the
minimal issuer and the same issuer with its transparency log off, on a database of its
own. At each connection count the runs go round the configurations, and each
configuration's endpoints are loaded right after its hello, so that each ratio to hello,
and 2 workers against 1, compares runs a few seconds apart; then issue-token at the
issuer and at the issuer with its log off, in alternating slices (on, off, off, on...),
so that a busy moment of the machine hits both. Around each timed run the
server's process tree is read for its CPU time (:mod:`benchmarks.workers`): requests per
server CPU-second, and the workers' shares. The audit log (and the transparency log's
entries with it) is checked after each issue-token run, and the deleted-key check ends
each configuration. Servers, and a PostgreSQL database, never outlive their database's
turn.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks import load, log_cost, machine, minimal, mint, servers, stages, targets, workers
from benchmarks.databases import AuditLog, postgres_available, sqlite_url, throwaway_postgres
from benchmarks.load import LoadResult, Request
from benchmarks.plan import SQLITE, Plan
from benchmarks.results import (
    DISCOVERY,
    HELLO,
    ISSUE_TOKEN,
    ISSUER_ENDPOINTS,
    JWKS,
    MINIMAL,
    Configuration,
    DeletedKeyCheck,
    EndpointRun,
    Results,
    checks,
    efficiency,
)
from benchmarks.servers import Server, Tenant

ISSUE_PATH = "/api/v1/federate/issue-token"
AUDIENCE = "sts.amazonaws.com"
SUBJECT_TEMPLATE = ["teams", "environment"]


def issue_body(tenant: Tenant) -> str:
    return json.dumps(
        {"run_id": tenant.run_id, "audience": AUDIENCE, "subject_template": SUBJECT_TEMPLATE}
    )


def requests_for(tenant: Tenant) -> dict[str, Request]:
    return {
        HELLO: Request(path="/hello"),
        ISSUE_TOKEN: Request(
            path=ISSUE_PATH,
            method="POST",
            headers=tenant.issue_headers(),
            body=issue_body(tenant),
        ),
        MINIMAL: Request(
            path=minimal.PATH,
            method="POST",
            headers={
                "Authorization": f"Bearer {minimal.KEY}",
                "X-Warp-Ambient-Workload-Token": minimal.WORKLOAD_TOKEN,
                "Content-Type": "application/json",
            },
            body=json.dumps(
                {
                    "run_id": minimal.RUN_ID,
                    "audience": AUDIENCE,
                    "subject_template": SUBJECT_TEMPLATE,
                }
            ),
        ),
        JWKS: Request(path="/.well-known/jwks.json"),
        DISCOVERY: Request(path="/.well-known/openid-configuration"),
    }


def run(plan: Plan, *, log: bool = True) -> Results:
    started = time.monotonic()
    results = Results(machine=machine.describe(), plan=plan, mint=None, configurations=[])
    _say(log, f"mint vs raw signing ({plan.mint_rounds} rounds, pinned to one core)")
    try:
        results.mint = mint.run_pinned(plan.mint_iterations, plan.mint_rounds)
    except Exception as exc:  # recorded; the run goes on and fails at the end
        _say(log, f"  failed: {exc}")
    for database in plan.databases:
        iterations = stages.SMOKE_ITERATIONS if plan.smoke else stages.FULL_ITERATIONS
        if database != SQLITE and not plan.smoke:
            iterations = stages.POSTGRES_ITERATIONS
        _say(log, f"where issue-token's time goes, {database} ({iterations} x {stages.ROUNDS})")
        breakdown = _stage_breakdown(database, iterations)
        results.stages.append(breakdown)
        _say(log, f"  {stages.summary_line(breakdown)}")
    with tempfile.TemporaryDirectory(prefix="federation-bench-") as tmp:
        for database in plan.databases:
            group = [Configuration(database=database, workers=count) for count in plan.workers]
            results.configurations += group
            unavailable = None if database == SQLITE else postgres_available()
            if unavailable:
                for configuration in group:
                    configuration.skipped = unavailable
                _say(log, f"{database}: skipped ({unavailable})")
                continue
            try:
                _measure_database(plan, group, Path(tmp) / database, log)
            except Exception as exc:  # recorded; the run goes on and fails at the end
                error = f"{type(exc).__name__}: {exc}"
                for configuration in group:  # measured together, so failed together
                    configuration.error = error
                _say(log, f"  failed: {error}")
    results.efficiency = efficiency(results.configurations)
    results.checks = checks(results.configurations)
    results.targets = targets.evaluate(results)
    results.elapsed_s = round(time.monotonic() - started, 1)
    results.load_average_after = os.getloadavg()
    return results


def _stage_breakdown(database: str, iterations: int) -> stages.StageBreakdown:
    """:func:`benchmarks.stages.run_pinned` on a fresh database; never raises."""
    unavailable = None if database == SQLITE else postgres_available()
    if unavailable:
        return stages.StageBreakdown(database=database, skipped=unavailable)
    try:
        if database == SQLITE:
            return stages.run_pinned(None, iterations)  # a SQLite file in its own home
        with throwaway_postgres() as database_url:
            return stages.run_pinned(database_url, iterations)
    except Exception as exc:  # recorded; the run goes on and fails at the end
        return stages.StageBreakdown(database=database, error=f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class _Stand:
    """One configuration's servers, side by side: the issuer set up, and hello."""

    configuration: Configuration
    issuer: Server
    admin_key: str
    hello: Server
    minimal: Server | None  # with one worker, where the targets are set
    log_off: log_cost.Side | None  # likewise: the issuer with its transparency log off
    tenant: Tenant
    audit: AuditLog
    home: Path


def _start(stack: ExitStack, configuration: Configuration, home: Path) -> _Stand:
    home.mkdir(parents=True)
    if configuration.database == SQLITE:
        database_url = sqlite_url(home / "issuer")
    else:
        database_url = stack.enter_context(throwaway_postgres())
    count = configuration.workers
    issuer, admin_key = stack.enter_context(servers.issuer(home / "issuer", database_url, count))
    hello = stack.enter_context(servers.hello(home / "hello", count))
    baseline = log_off = None
    if count == 1:
        own = (
            None if configuration.database == SQLITE else stack.enter_context(throwaway_postgres())
        )
        baseline = stack.enter_context(servers.minimal(home / "minimal", count, own))
        log_off = _start_log_off(stack, configuration, home / "issuer-log-off")
    audit = AuditLog(database_url)
    stack.callback(audit.close)
    tenant = servers.set_up(issuer, admin_key)
    return _Stand(configuration, issuer, admin_key, hello, baseline, log_off, tenant, audit, home)


def _start_log_off(stack: ExitStack, configuration: Configuration, home: Path) -> log_cost.Side:
    """The issuer as :func:`_start` serves it, its log off, on a database of its own."""
    if configuration.database == SQLITE:
        database_url = sqlite_url(home)
    else:
        database_url = stack.enter_context(throwaway_postgres())
    server, admin_key = stack.enter_context(
        servers.issuer(home, database_url, configuration.workers, servers.LOG_OFF)
    )
    audit = AuditLog(database_url)
    stack.callback(audit.close)
    return log_cost.Side(server, _issue(servers.set_up(server, admin_key)), audit)


def _measure_database(plan: Plan, group: list[Configuration], home: Path, log: bool) -> None:
    """Every worker count's servers at once, each database its own; the runs go round
    the worker counts at each connection count, so that 2 workers / 1 worker, like each
    ratio to hello, compares runs seconds apart."""
    with ExitStack() as stack:
        stands = [_start(stack, c, home / f"{c.workers}-workers") for c in group]
        for connections in plan.connections:
            for stand in stands:
                _say(log, f"{stand.configuration.label}, {connections} connections")
                base = _measure(plan, stand, stand.hello, HELLO, connections)
                stand.configuration.runs.append(base)
                _say(log, _line(base))
                if stand.minimal is not None:
                    floor = _measure(plan, stand, stand.minimal, MINIMAL, connections, base.load)
                    stand.configuration.runs.append(floor)
                    _say(log, _line(floor))
                for endpoint in ISSUER_ENDPOINTS:
                    measured = _measure(plan, stand, stand.issuer, endpoint, connections, base.load)
                    stand.configuration.runs.append(measured)
                    _say(log, _line(measured))
                if stand.log_off is not None:
                    on = log_cost.Side(stand.issuer, _issue(stand.tenant), stand.audit)
                    cost = log_cost.measure(plan, on, stand.log_off, connections, stand.home)
                    stand.configuration.log_cost.append(cost)
                    _say(log, log_cost.line(cost))
        for stand in stands:
            checked = _deleted_key_check(
                stand.issuer, stand.admin_key, stand.tenant, stand.configuration.workers
            )
            stand.configuration.deleted_key = checked
            _say(log, f"{stand.configuration.label}: deleted key answers {checked.statuses}")


def _measure(
    plan: Plan,
    stand: _Stand,
    server: Server,
    endpoint: str,
    connections: int,
    hello: LoadResult | None = None,
) -> EndpointRun:
    """One timed run after the warm-up, with the server's CPU time read around it (and
    only it: the warm-up and the audit count are outside); ``hello`` is the hello run
    the ratios are to."""
    request = requests_for(stand.tenant)[endpoint]
    counted = stand.audit if endpoint == ISSUE_TOKEN else None
    workdir = stand.home
    if plan.warmup > 0:
        load.run(
            server.url, request, connections=connections, duration=plan.warmup, workdir=workdir
        )
    before = counted.settled_count() if counted else 0
    cpu_before = workers.read(server.process.pid)
    result = load.run(
        server.url, request, connections=connections, duration=plan.duration, workdir=workdir
    )
    count = stand.configuration.workers
    cpu = workers.spent(cpu_before, workers.read(server.process.pid), count)
    audit_check = None
    if counted is not None:
        audit_check = counted.check(before, result.ok, connections, logged=True)
    return EndpointRun(
        endpoint=endpoint,
        path=request.path,
        connections=connections,
        load=result,
        ratio_to_hello=_over(result.requests_per_s, hello.requests_per_s if hello else None),
        p99_to_hello=_over(result.p99_ms, hello.p99_ms if hello else None),
        cpu=cpu,
        requests_per_cpu_s=_over(result.requests, cpu.seconds, digits=1),
        audit=audit_check,
    )


def _issue(tenant: Tenant) -> Request:
    return requests_for(tenant)[ISSUE_TOKEN]


def _over(value: float, base: float | None, digits: int = 3) -> float | None:
    return round(value / base, digits) if base else None


def _deleted_key_check(
    issuer: Server, admin_key: str, tenant: Tenant, worker_count: int
) -> DeletedKeyCheck:
    """Delete the benchmark's key; the very next issue-token requests must all be 401
    (several, each on a new connection, so that every worker is asked)."""
    servers.delete_key(issuer, admin_key, tenant.key_id)
    statuses = servers.statuses_on_fresh_connections(
        issuer, ISSUE_PATH, tenant.issue_headers(), issue_body(tenant), count=4 * worker_count
    )
    return DeletedKeyCheck(statuses=statuses, ok=all(s == 401 for s in statuses))


def _line(run: EndpointRun) -> str:
    result = run.load
    ratio = f"  x hello {run.ratio_to_hello:.2f}" if run.ratio_to_hello is not None else ""
    per_cpu = f"  {run.requests_per_cpu_s:,.0f}/CPU-s" if run.requests_per_cpu_s else ""
    shares = ""
    if run.cpu is not None and run.cpu.balance.workers > 1:
        shares = "  shares " + "/".join(f"{s:.2f}" for s in run.cpu.balance.shares)
    audit = f"  audit {'ok' if run.audit.ok else 'WRONG'}" if run.audit else ""
    return (
        f"  c{run.connections:<3} {run.endpoint:<12} {result.requests_per_s:>9.0f} req/s  "
        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
        f"errors {result.error_total}{ratio}{per_cpu}{shares}{audit}"
    )


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, flush=True)
