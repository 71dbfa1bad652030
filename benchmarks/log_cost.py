"""What the transparency log costs issue-token: the issuer against the same issuer with
its log off, loaded in alternating slices.

Two servers measured one after the other answer different questions on a busy machine:
whatever else runs takes its share of the cores from one run and not the other. So
each side's timed run is cut into ``plan.log_slices`` slices, taken in turn (on, off,
off, on, on, off, ...), so that a busy moment falls on both and neither always goes
first. Each side's requests per second is its requests over its slices' time; its
server's CPU time is read around its own slices (requests per CPU-second does not
depend on the share of the cores the server got). The audit check runs over each
side's slices: the log's entries as many as the audit rows with the log on, none off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks import load, workers
from benchmarks.databases import AuditLog
from benchmarks.load import LoadResult, Request
from benchmarks.plan import Plan
from benchmarks.results import LogCost, LogSide
from benchmarks.servers import Server


@dataclass(frozen=True)
class Side:
    """One of the two issuers: the server, its issue-token request, its audit log."""

    server: Server
    request: Request
    audit: AuditLog


def measure(plan: Plan, on: Side, off: Side, connections: int, workdir: Path) -> LogCost:
    """Both sides at ``connections`` connections, each after a warm-up of its own."""
    sides = {True: on, False: off}
    before: dict[bool, int] = {}
    for logged, side in sides.items():
        if plan.warmup > 0:
            _load(side, connections, plan.warmup, workdir)
        before[logged] = side.audit.settled_count()
    slices: dict[bool, list[LoadResult]] = {True: [], False: []}
    cpu = {True: 0.0, False: 0.0}
    for turn in range(plan.log_slices):
        for logged in (True, False) if turn % 2 == 0 else (False, True):
            side = sides[logged]
            cpu_before = workers.read(side.server.process.pid)
            slices[logged].append(
                _load(side, connections, plan.duration / plan.log_slices, workdir)
            )
            after = workers.read(side.server.process.pid)
            cpu[logged] += workers.spent(cpu_before, after, 1).seconds
    made = {
        logged: _side(logged, slices[logged], cpu[logged], side, before[logged], connections)
        for logged, side in sides.items()
    }
    return LogCost(
        connections=connections,
        on=made[True],
        off=made[False],
        ratio=_over(made[True].requests_per_s, made[False].requests_per_s),
        cpu_ratio=_over(made[True].requests_per_cpu_s, made[False].requests_per_cpu_s),
    )


def line(cost: LogCost) -> str:
    """The comparison on one line, as the run prints it."""
    on, off = cost.on, cost.off
    checked = "ok" if on.audit.ok and off.audit.ok else "WRONG"
    ratio = "-" if cost.ratio is None else f"{cost.ratio:.2f}"
    return (
        f"  c{cost.connections:<3} issue-token, log on / off in {len(on.slices)} + "
        f"{len(off.slices)} slices: {on.requests_per_s:.0f} / {off.requests_per_s:.0f} req/s"
        f" = {ratio}  errors {on.errors + off.errors}  audit and log {checked}"
    )


def _load(side: Side, connections: int, duration: float, workdir: Path) -> LoadResult:
    return load.run(
        side.server.url, side.request, connections=connections, duration=duration, workdir=workdir
    )


def _side(
    logged: bool, runs: list[LoadResult], cpu: float, side: Side, before: int, connections: int
) -> LogSide:
    requests = sum(run.requests for run in runs)
    seconds = sum(run.duration_s for run in runs)
    ok = sum(run.ok for run in runs)
    return LogSide(
        logged=logged,
        slices=runs,
        requests=requests,
        seconds=round(seconds, 4),
        requests_per_s=round(requests / seconds, 1) if seconds > 0 else 0.0,
        cpu_seconds=round(cpu, 3),
        requests_per_cpu_s=_over(requests, cpu, digits=1),
        errors=sum(run.error_total for run in runs),
        # NOTE: each slice may leave its connections' requests in flight when it stops
        audit=side.audit.check(before, ok, connections * len(runs), logged=logged),
    )


def _over(value: float | None, base: float | None, digits: int = 3) -> float | None:
    return round(value / base, digits) if value is not None and base else None
