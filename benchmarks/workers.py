"""Worker balance: how a server's CPU time splits over its worker processes.

Two workers only help when the kernel hands connections to both. The server's worker
processes are found under its process in ``/proc`` (``task/*/children``, recursively:
the leaves of the tree are the workers), and their CPU time (user + system) is read
from ``/proc/<pid>/stat`` before and after a timed run. A run is balanced when every
worker did at least ``0.7 / workers`` of the work: 0.35 each with two.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


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


def worker_pids(pid: int) -> list[int]:
    """The leaf processes under ``pid`` (bounded walk): its workers."""
    leaves: list[int] = []
    pending, seen = [pid], {pid}
    while pending and len(seen) < 1024:
        current = pending.pop()
        below = children(current) - seen
        if not below and current != pid:
            leaves.append(current)
        seen |= below
        pending.extend(below)
    return sorted(leaves)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process, or None when it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields follow the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def snapshot(pids: list[int]) -> dict[int, float | None]:
    return {pid: cpu_seconds(pid) for pid in pids}


@dataclass(frozen=True)
class Balance:
    """The split of CPU time over the workers in one run."""

    workers: int
    cpu_seconds: list[float]
    shares: list[float]
    threshold: float
    balanced: bool


def balance(
    before: dict[int, float | None], after: dict[int, float | None], workers: int
) -> Balance:
    """Compare two snapshots of the same workers; a worker gone or replaced in between
    counts as having done nothing."""
    spent: list[float] = []
    for pid, start in before.items():
        end = after.get(pid)
        spent.append(max(0.0, end - start) if start is not None and end is not None else 0.0)
    total = sum(spent)
    shares = [round(s / total, 3) if total > 0 else 0.0 for s in spent]
    threshold = round(0.7 / workers, 3) if workers > 1 else 0.0
    balanced = len(spent) == workers and total > 0 and min(shares) >= threshold
    return Balance(
        workers=workers,
        cpu_seconds=[round(s, 3) for s in spent],
        shares=shares,
        threshold=threshold,
        balanced=balanced,
    )
