"""One benchmark run: the mint measurement, the in-process stage breakdown of one
issue-token request per database, then every server configuration in turn.

For each configuration (a database and a number of workers) the issuer and the hello
baseline are started side by side, and every endpoint is loaded at each connection
count right after hello, so that each ratio compares runs a few seconds apart. The
audit log is checked after each issue-token run, and the deleted-key check ends each
configuration. Servers, and a PostgreSQL database, never outlive their configuration.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks import load, machine, mint, servers, stages, targets
from benchmarks.databases import AuditLog, postgres_available, sqlite_url, throwaway_postgres
from benchmarks.load import Request
from benchmarks.plan import SQLITE, Plan
from benchmarks.results import (
    DISCOVERY,
    HELLO,
    ISSUE_TOKEN,
    ISSUER_ENDPOINTS,
    JWKS,
    AuditCheck,
    Configuration,
    DeletedKeyCheck,
    EndpointRun,
    Results,
    checks,
    scaling,
)
from benchmarks.servers import Server, Tenant
from benchmarks.workers import balance, snapshot, worker_pids

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
            unavailable = None if database == SQLITE else postgres_available()
            for workers in plan.workers:
                configuration = Configuration(database=database, workers=workers)
                results.configurations.append(configuration)
                if unavailable:
                    configuration.skipped = unavailable
                    _say(log, f"{configuration.label}: skipped ({unavailable})")
                    continue
                _say(log, f"{configuration.label}")
                home = Path(tmp) / f"{database}-{workers}"
                try:
                    _measure_configuration(plan, configuration, home, log)
                except Exception as exc:  # recorded; the run goes on and fails at the end
                    configuration.error = f"{type(exc).__name__}: {exc}"
                    _say(log, f"  failed: {configuration.error}")
    results.scaling = scaling(results.configurations)
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


def _measure_configuration(plan: Plan, configuration: Configuration, home: Path, log: bool) -> None:
    workers = configuration.workers
    with ExitStack() as stack:
        home.mkdir(parents=True)
        if configuration.database == SQLITE:
            database_url = sqlite_url(home / "issuer")
        else:
            database_url = stack.enter_context(throwaway_postgres())
        issuer, admin_key = stack.enter_context(
            servers.issuer(home / "issuer", database_url, workers)
        )
        hello = stack.enter_context(servers.hello(home / "hello", workers))
        tenant = servers.set_up(issuer, admin_key)
        audit = AuditLog(database_url)
        stack.callback(audit.close)
        requests = requests_for(tenant)
        for connections in plan.connections:
            base = _measure(plan, hello, HELLO, requests[HELLO], connections, workers, home)
            configuration.runs.append(base)
            _say(log, _line(base))
            for endpoint in ISSUER_ENDPOINTS:
                measured = _measure(
                    plan,
                    issuer,
                    endpoint,
                    requests[endpoint],
                    connections,
                    workers,
                    home,
                    audit=audit if endpoint == ISSUE_TOKEN else None,
                    hello_rps=base.load.requests_per_s,
                )
                configuration.runs.append(measured)
                _say(log, _line(measured))
        configuration.deleted_key = _deleted_key_check(issuer, admin_key, tenant, workers)
        _say(log, f"  deleted key answers {configuration.deleted_key.statuses}")


def _measure(
    plan: Plan,
    server: Server,
    endpoint: str,
    request: Request,
    connections: int,
    workers: int,
    workdir: Path,
    *,
    audit: AuditLog | None = None,
    hello_rps: float | None = None,
) -> EndpointRun:
    if plan.warmup > 0:
        load.run(
            server.url, request, connections=connections, duration=plan.warmup, workdir=workdir
        )
    before = audit.settled_count() if audit else 0
    pids = worker_pids(server.process.pid)
    cpu_before = snapshot(pids)
    result = load.run(
        server.url, request, connections=connections, duration=plan.duration, workdir=workdir
    )
    cpu_after = snapshot(pids)
    audit_check = None
    if audit is not None:
        after = audit.settled_count()
        grew = after - before
        audit_check = AuditCheck(
            before=before,
            after=after,
            grew=grew,
            ok_answers=result.ok,
            connections=connections,
            ok=result.ok <= grew <= result.ok + connections,
        )
    ratio = None
    if hello_rps:
        ratio = round(result.requests_per_s / hello_rps, 3)
    return EndpointRun(
        endpoint=endpoint,
        path=request.path,
        connections=connections,
        load=result,
        ratio_to_hello=ratio,
        balance=balance(cpu_before, cpu_after, workers),
        audit=audit_check,
    )


def _deleted_key_check(
    issuer: Server, admin_key: str, tenant: Tenant, workers: int
) -> DeletedKeyCheck:
    """Delete the benchmark's key; the very next issue-token requests must all be 401
    (several, each on a new connection, so that every worker is asked)."""
    servers.delete_key(issuer, admin_key, tenant.key_id)
    statuses = servers.statuses_on_fresh_connections(
        issuer, ISSUE_PATH, tenant.issue_headers(), issue_body(tenant), count=4 * workers
    )
    return DeletedKeyCheck(statuses=statuses, ok=all(s == 401 for s in statuses))


def _line(run: EndpointRun) -> str:
    result = run.load
    ratio = f"  x hello {run.ratio_to_hello:.2f}" if run.ratio_to_hello is not None else ""
    shares = ""
    if run.balance is not None and run.balance.workers > 1:
        shares = "  shares " + "/".join(f"{s:.2f}" for s in run.balance.shares)
    audit = f"  audit {'ok' if run.audit.ok else 'WRONG'}" if run.audit else ""
    return (
        f"  c{run.connections:<3} {run.endpoint:<12} {result.requests_per_s:>9.0f} req/s  "
        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
        f"errors {result.error_total}{ratio}{shares}{audit}"
    )


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, flush=True)
