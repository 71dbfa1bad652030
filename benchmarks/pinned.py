"""Measurements in a child process pinned to one core, so that pinning never pins the
servers and load generator the same run starts afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def pinned_cpu() -> int:
    """The core to pin to: the last one this process may run on."""
    return max(os.sched_getaffinity(0))


def run_child(module: str, arguments: list[str], timeout: float) -> dict[str, Any]:
    """``python -m module --cpu N arguments``; its last line of output, as JSON."""
    command = [sys.executable, "-m", module, "--cpu", str(pinned_cpu()), *arguments]
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("FEDERATION_")
    }
    done = subprocess.run(  # noqa: S603 - a fixed command line of our own
        command,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
