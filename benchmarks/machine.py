"""The machine a run was measured on, recorded with its numbers: results from different
machines (or a busy one) are not comparable, and the load average says how busy."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    cores: int
    usable_cores: int
    python: str
    platform: str
    date: str
    load_average: tuple[float, float, float]
    versions: dict[str, str]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> Machine:
    return Machine(
        cpu_model=cpu_model(),
        cores=os.cpu_count() or 0,
        usable_cores=len(os.sched_getaffinity(0)),
        python=platform.python_version(),
        platform=platform.platform(),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        load_average=os.getloadavg(),
        versions={
            name: _version(name)
            for name in ("federation", "granian", "fastapi", "sqlalchemy", "cryptography")
        },
    )
