"""What the whole suite needs beside the package, named before `make test` runs it:
PostgreSQL, Redis, Chromium, wrk and Go, each with where the suite looks for it and whether
it is there. The tests that need a missing one fail rather than skip; this only says so
up front. It never fails itself, so that a run that selects fewer tests (`-m "not
postgres"`) still goes on.

Run as a script (`python tests/services.py`); it imports nothing of the package."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
CHROMIUM = "/usr/bin/chromium"
GO_MOD = "/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog"


@dataclass(frozen=True)
class Service:
    name: str
    where: str
    setting: str
    present: bool
    needed_by: str


def answers(url: str, default_port: int, timeout: float = 1.0) -> tuple[str, bool]:
    """(host:port, whether a TCP connection to it opens)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return f"{host}:{port}", True
    except OSError:
        return f"{host}:{port}", False


def services(environ: dict[str, str]) -> list[Service]:
    postgres, postgres_up = answers(environ.get("FEDERATION_TEST_POSTGRES", POSTGRES_URL), 5432)
    redis, redis_up = answers(environ.get("FEDERATION_TEST_REDIS", REDIS_URL), 6379)
    chromium = environ.get("CONSOLE_TEST_CHROMIUM", CHROMIUM)
    wrk = shutil.which("wrk")
    go = shutil.which("go")
    return [
        Service(
            "PostgreSQL",
            f"{postgres} (user postgres, trust authentication)",
            "FEDERATION_TEST_POSTGRES",
            postgres_up,
            "the store and integration suites",
        ),
        Service("Redis", redis, "FEDERATION_TEST_REDIS", redis_up, "the rate-limit tests"),
        Service(
            "Chromium",
            chromium,
            "CONSOLE_TEST_CHROMIUM",
            os.access(chromium, os.X_OK),
            "the console's browser tests",
        ),
        Service("wrk", wrk or "wrk on PATH", "PATH", wrk is not None, "the benchmark smoke test"),
        Service(
            "Go + x/mod",
            f"{go or 'go on PATH'}, {GO_MOD}",
            "PATH",
            go is not None and os.path.isdir(GO_MOD),
            "the transparency log's Go verifier",
        ),
    ]


def report(found: list[Service]) -> str:
    lines = ["make test needs these services (.ci/run installs and starts them):"]
    width = max(len(service.name) for service in found)
    for service in found:
        state = "ok" if service.present else f"MISSING: {service.needed_by} will fail"
        lines.append(f"  {service.name.ljust(width)}  {service.where} [{service.setting}]  {state}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(services(dict(os.environ))), file=sys.stderr)
