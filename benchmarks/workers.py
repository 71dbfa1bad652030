"""Server CPU time: the whole server's over a timed run, and its split over the workers.

A server is a process tree: the process the harness started (granian's parent) and the
worker processes under it, found in ``/proc`` (``task/*/children``, recursively; the
leaves are the workers). What is read, for every process of the tree right before and
right after a timed run, is its own user + system time: ``utime`` + ``stime``, fields
14 and 15 of ``/proc/<pid>/stat``, in clock ticks (10 ms here), which cover all the
process's threads. A child that exits within the run would only show in its parent's
``cstime`` once reaped, and not only for the run; granian's workers live for the whole
run, so the live processes' own times are the server's. A process that appears during
the run counts in full (all its time is the run's); one that is gone at the end is
counted as ``exited`` and its last moments are missing. A database server's processes
(PostgreSQL's backends) are not in the tree and not counted.

Two workers only help when the kernel hands connections to both. A run is balanced
when every worker did at least ``0.7 / workers`` of the workers' CPU time: 0.35 each
with two, where a fair split is 0.5.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")
_MAX_PROCESSES = 1024  # bound on the walk of a tree


def children(pid: int) -> set[int]:
    """The direct children of ``pid``, over all its threads."""
    found: set[int] = set()
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.update(int(word) for word in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def _tree(pid: int) -> tuple[list[int], list[int]]:
    """Every process of the tree under ``pid`` (``pid`` first), and its leaves."""
    every, leaves = [pid], []
    pending, seen = [pid], {pid}
    while pending and len(seen) < _MAX_PROCESSES:
        current = pending.pop()
        below = children(current) - seen
        if not below and current != pid:
            leaves.append(current)
        seen |= below
        every.extend(sorted(below))
        pending.extend(below)
    return every, sorted(leaves)


def worker_pids(pid: int) -> list[int]:
    """The leaf processes under ``pid``: its workers."""
    return _tree(pid)[1]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process (all its threads), or None when it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields follow the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


@dataclass(frozen=True)
class Reading:
    """The CPU seconds of every process of a server's tree at one moment."""

    seconds: dict[int, float]
    workers: list[int]


def read(pid: int) -> Reading:
    """The tree under ``pid`` and each of its processes' CPU time, now."""
    every, leaves = _tree(pid)
    seconds = {p: s for p in every if (s := cpu_seconds(p)) is not None}
    return Reading(seconds=seconds, workers=[p for p in leaves if p in seconds])


@dataclass(frozen=True)
class Balance:
    """The split of the workers' CPU time over the workers in one run."""

    workers: int
    cpu_seconds: list[float]
    shares: list[float]
    threshold: float
    balanced: bool


@dataclass(frozen=True)
class ServerCpu:
    """The CPU time a server spent in one run: its whole tree's, and the workers' split."""

    seconds: float  # every process of the tree, user + system
    processes: int  # the processes read
    exited: int  # processes gone by the end of the run (their last moments are missing)
    balance: Balance


def spent(before: Reading, after: Reading, workers: int) -> ServerCpu:
    """What the server spent between two readings of its tree."""
    total = 0.0
    for pid, end in after.seconds.items():
        total += max(0.0, end - before.seconds.get(pid, 0.0))
    exited = sum(1 for pid in before.seconds if pid not in after.seconds)
    return ServerCpu(
        seconds=round(total, 3),
        processes=len(before.seconds.keys() | after.seconds.keys()),
        exited=exited,
        balance=balance(before, after, workers),
    )


def balance(before: Reading, after: Reading, workers: int) -> Balance:
    """The split over the workers of the first reading; a worker gone or replaced in
    between counts as having done nothing."""
    spent_by: list[float] = []
    for pid in before.workers:
        start, end = before.seconds.get(pid), after.seconds.get(pid)
        spent_by.append(max(0.0, end - start) if start is not None and end is not None else 0.0)
    total = sum(spent_by)
    shares = [round(s / total, 3) if total > 0 else 0.0 for s in spent_by]
    threshold = round(0.7 / workers, 3) if workers > 1 else 0.0
    balanced = len(spent_by) == workers and total > 0 and min(shares) >= threshold
    return Balance(
        workers=workers,
        cpu_seconds=[round(s, 3) for s in spent_by],
        shares=shares,
        threshold=threshold,
        balanced=balanced,
    )
