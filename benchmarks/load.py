"""HTTP load: ``wrk`` as a separate process, its results read from one JSON line.

The load generator runs in its own process (one thread) so that it never shares an
interpreter with the server it measures. Each run gets a Lua script that sets the
request (method, body, headers) and whose ``done`` hook prints the numbers as a JSON
line behind a marker, so nothing here parses wrk's human-readable report.

wrk takes whole seconds only; a run of a fractional duration is started for the next
whole second and stopped with SIGINT on time, after which wrk reports as usual (its
own measured duration is what the rates are computed from).
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "BENCH-RESULT "
_REPORT_GRACE = 30.0  # seconds past the duration before wrk is given up on


class LoadError(RuntimeError):
    """wrk is missing, failed, or printed no result."""


@dataclass(frozen=True)
class Request:
    """One request, sent over and over."""

    path: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class Errors:
    """wrk's error counts: ``status`` is answers of 400 and above, the rest are socket
    errors."""

    connect: int
    read: int
    write: int
    status: int
    timeout: int

    @property
    def total(self) -> int:
        return self.connect + self.read + self.write + self.status + self.timeout


@dataclass(frozen=True)
class LoadResult:
    """What one timed run measured."""

    connections: int
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: Errors
    error_total: int

    @property
    def ok(self) -> int:
        """Answers below 400 (the server answers no redirects on these paths)."""
        return self.requests - self.errors.status


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise LoadError("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    return found


def lua_script(request: Request) -> str:
    """The script: the request, and a ``done`` hook printing one JSON line."""
    lines = [f"wrk.method = {_lua_string(request.method)}"]
    if request.body is not None:
        lines.append(f"wrk.body = {_lua_string(request.body)}")
    for name, value in request.headers.items():
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    lines.append(
        """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "\\n%s{\\"requests\\":%.0f,\\"duration_us\\":%.0f,\\"connect\\":%.0f,\\"read\\":%.0f,"
      .. "\\"write\\":%.0f,\\"status\\":%.0f,\\"timeout\\":%.0f,"
      .. "\\"p50_us\\":%.1f,\\"p99_us\\":%.1f}\\n",
    MARKER, summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end
""".replace("MARKER", _lua_string(MARKER))
    )
    return "\n".join(lines) + "\n"


def _lua_string(value: str) -> str:
    """A Lua long-bracket literal, which takes every character as it is."""
    for level in range(8):
        close = "]" + "=" * level + "]"
        if close not in value:
            return "[" + "=" * level + "[" + value + close
    raise ValueError(f"cannot quote {value!r} for Lua")


def run(
    base_url: str,
    request: Request,
    *,
    connections: int,
    duration: float,
    workdir: Path,
) -> LoadResult:
    """One run of ``duration`` seconds at ``connections`` connections, one wrk thread."""
    if duration <= 0:
        raise ValueError("duration must be positive")
    script = workdir / f"wrk-{time.monotonic_ns()}.lua"
    script.write_text(lua_script(request))
    whole = max(1, math.ceil(duration))
    command = [
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{whole}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        base_url.rstrip("/") + request.path,
    ]
    process = subprocess.Popen(  # noqa: S603 - a fixed command line of our own
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        if whole != duration:
            try:
                process.wait(timeout=duration)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=whole + _REPORT_GRACE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        script.unlink(missing_ok=True)
    if process.returncode != 0:
        raise LoadError(f"wrk exited with {process.returncode}: {stderr.strip()}")
    if stderr.strip():
        # NOTE: wrk runs on without a script it cannot load: never take such a run.
        raise LoadError(f"wrk complained: {stderr.strip()[-500:]}")
    return parse(stdout, connections)


def parse(stdout: str, connections: int) -> LoadResult:
    """The result from the ``done`` hook's line in wrk's output."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise LoadError(f"wrk printed no result line: {stdout[-500:]!r}")
    errors = Errors(
        connect=int(data["connect"]),
        read=int(data["read"]),
        write=int(data["write"]),
        status=int(data["status"]),
        timeout=int(data["timeout"]),
    )
    duration_s = float(data["duration_us"]) / 1e6
    requests = int(data["requests"])
    return LoadResult(
        connections=connections,
        requests=requests,
        duration_s=round(duration_s, 4),
        requests_per_s=round(requests / duration_s, 1) if duration_s > 0 else 0.0,
        p50_ms=round(float(data["p50_us"]) / 1000, 3),
        p99_ms=round(float(data["p99_us"]) / 1000, 3),
        errors=errors,
        error_total=errors.total,
    )
