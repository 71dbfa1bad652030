"""What one benchmark run covers: databases, worker counts, connections and durations.

Two plans: the full one behind ``make bench`` (a few minutes) and the smoke one the
test suite runs (SQLite, 16 connections, half-second runs: it checks that everything
works end to end and says nothing about speed).
"""

from __future__ import annotations

from dataclasses import dataclass

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class Plan:
    smoke: bool
    databases: tuple[str, ...]
    workers: tuple[int, ...]
    connections: tuple[int, ...]
    duration: float  # seconds of each timed run
    warmup: float  # seconds of load before each timed run, not measured
    mint_iterations: int  # per round and operation
    mint_rounds: int
    log_slices: int  # per issuer, log on and off, alternating; each duration / log_slices


def full(duration: float | None = None) -> Plan:
    return Plan(
        smoke=False,
        databases=(SQLITE, POSTGRESQL),
        workers=(1, 2),
        connections=(16, 64),
        duration=duration or 4.0,
        warmup=1.0,
        mint_iterations=10000,
        mint_rounds=3,
        log_slices=4,
    )


def smoke(duration: float | None = None) -> Plan:
    return Plan(
        smoke=True,
        databases=(SQLITE,),
        workers=(1, 2),
        connections=(16,),
        duration=duration or 0.5,
        warmup=0.2,
        mint_iterations=50,
        mint_rounds=3,
        log_slices=2,
    )
