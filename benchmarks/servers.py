"""The servers under load: the real issuer and the hello baseline, each a subprocess.

The issuer runs exactly as an operator runs it: ``federation init`` then ``federation
serve --workers N`` in a fresh directory, configured by environment only. It is then set
up through its own HTTP API with the admin key that ``init`` wrote: a user, a personal
API key with the ``federate`` scope, and a run in progress (see the README's
walk-through). Every server is started in its own process group, and :func:`stop`
ends the group (SIGTERM, then SIGKILL after a timeout); every wait has a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

ISSUER = "https://issuer.example.com"
HOST = "127.0.0.1"
START_DEADLINE = 60.0
STOP_TIMEOUT = 15.0
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # holds the benchmarks package


class ServerError(RuntimeError):
    """A server did not start, or its set-up through the API failed."""


@dataclass
class Server:
    """A running server: its process group leader, base URL and log file."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""


@dataclass(frozen=True)
class Tenant:
    """What the benchmark acts as: a federate key and a run in progress."""

    principal_uid: str
    key_id: str
    key: str
    run_id: str
    workload_token: str

    def issue_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.key}",
            "X-Warp-Ambient-Workload-Token": self.workload_token,
            "Content-Type": "application/json",
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def federation_command(*args: str) -> list[str]:
    """The ``federation`` entry point installed beside this interpreter (or the module)."""
    script = Path(sys.executable).with_name("federation")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "federation", *args]


# The harness asks one key and one run for thousands of tokens a second: rate limits that
# never refuse, so that their check is measured and nothing is turned away.
UNLIMITED = {
    "FEDERATION_RATE_LIMIT_KEY": "1000000/s",
    "FEDERATION_RATE_LIMIT_RUN": "1000000/s",
}


def clean_environment() -> dict[str, str]:
    """This process's environment without any issuer setting of the caller's shell."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FEDERATION_", "WARP_", "OZ_"))
    }


# The issuer with its transparency log off (on by default): what the log costs.
LOG_OFF = {"FEDERATION_TRANSPARENCY_LOG": "off"}


def issuer_environment(
    home: Path, database_url: str, port: int, settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The issuer's environment; ``settings`` adds FEDERATION_* variables."""
    return {
        **clean_environment(),
        "FEDERATION_ISSUER": ISSUER,
        "FEDERATION_DATABASE_URL": database_url,
        "FEDERATION_KEYS_DIR": str(home / "keys"),
        "FEDERATION_ADMIN_KEY_FILE": str(home / "var" / "admin-api-key"),
        "FEDERATION_PORT": str(port),
        "FEDERATION_HOST": HOST,
        **UNLIMITED,
        **(settings or {}),
    }


def _spawn(name: str, command: Sequence[str], env: dict[str, str], cwd: Path, port: int) -> Server:
    log_path = cwd / f"{name}-{port}.log"
    log: IO[bytes] = log_path.open("wb")
    try:
        process = subprocess.Popen(  # noqa: S603 - a fixed command line of our own
            list(command),
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()  # the child holds its own descriptor
    return Server(name=name, process=process, url=f"http://{HOST}:{port}", log=log_path)


def wait_ready(server: Server, path: str, deadline: float = START_DEADLINE) -> None:
    """Until ``path`` answers 200; fails at once when the process exits."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if server.process.poll() is not None:
            raise ServerError(f"{server.name} exited:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + path, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ServerError(f"{server.name} did not answer within {deadline:.0f} s:\n{server.log_tail()}")


def stop(server: Server) -> None:
    """End the server's process group: SIGTERM, then SIGKILL after a timeout."""
    process = server.process
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)
    # NOTE: also after a clean exit of the leader: no worker may outlive it.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=STOP_TIMEOUT)


def init_issuer(
    home: Path, database_url: str, port: int, settings: Mapping[str, str] | None = None
) -> tuple[dict[str, str], str]:
    """``federation init`` in ``home``: the environment to serve with, and the admin key."""
    env = issuer_environment(home, database_url, port, settings)
    done = subprocess.run(  # noqa: S603 - a fixed command line of our own
        federation_command("init"),
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise ServerError(f"federation init failed:\n{done.stderr[-2000:]}")
    admin_key = Path(env["FEDERATION_ADMIN_KEY_FILE"]).read_text().strip()
    return env, admin_key


@contextmanager
def issuer(
    home: Path, database_url: str, workers: int, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[Server, str]]:
    """The issuer, initialized and served with ``workers`` workers (and ``settings``,
    e.g. :data:`LOG_OFF`); yields it and the admin key, and stops it afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env, admin_key = init_issuer(home, database_url, port, settings)
    server = _spawn(
        "issuer", federation_command("serve", "--workers", str(workers)), env, home, port
    )
    try:
        wait_ready(server, "/healthz")
        yield server, admin_key
    finally:
        stop(server)


@contextmanager
def hello(home: Path, workers: int) -> Iterator[Server]:
    """The hello baseline, served the same way; stopped afterwards."""
    with _baseline("hello", home, workers, "/hello") as server:
        yield server


@contextmanager
def minimal(home: Path, workers: int, database_url: str | None = None) -> Iterator[Server]:
    """The minimal issuer baseline (:mod:`benchmarks.minimal`), served the same way on a
    SQLite file in ``home`` or on PostgreSQL (``database_url``, SQLAlchemy's form);
    stopped afterwards."""
    database = str(home / "minimal.db")
    if database_url is not None:
        database = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with _baseline("minimal", home, workers, "/healthz", ("--database", database)) as server:
        yield server


@contextmanager
def _baseline(
    name: str, home: Path, workers: int, ready_path: str, arguments: Sequence[str] = ()
) -> Iterator[Server]:
    """``python -m benchmarks.<name>``, served until the block ends."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = clean_environment()
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p
    )
    command = [sys.executable, "-m", f"benchmarks.{name}", "--port", str(port), *arguments]
    server = _spawn(name, [*command, "--workers", str(workers)], env, home, port)
    try:
        wait_ready(server, ready_path)
        yield server
    finally:
        stop(server)


def _call(
    client: httpx.Client, method: str, path: str, *, expect: int, **kwargs: Any
) -> dict[str, Any]:
    response = client.request(method, path, **kwargs)
    if response.status_code != expect:
        raise ServerError(f"{method} {path}: {response.status_code} {response.text[:500]}")
    return dict(response.json()) if response.content else {}


def set_up(server: Server, admin_key: str) -> Tenant:
    """A user in a team, a personal federate key for it, and a run in progress."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
        _call(
            client,
            "POST",
            "/api/v1/principals",
            expect=201,
            json={
                "type": "user",
                "uid": "bench",
                "email": "bench@example.com",
                "display_name": "Bench",
                "teams": ["platform"],
            },
        )
        key = _call(
            client,
            "POST",
            "/api/v1/api-keys",
            expect=201,
            json={
                "name": "bench",
                "type": "personal",
                "principal_uid": "bench",
                "scopes": ["federate"],
                "expires_in": "1d",
            },
        )
        run = _call(
            client,
            "POST",
            "/api/v1/runs",
            expect=201,
            json={
                "principal_uid": "bench",
                "team_uid": "platform",
                "environment": "staging",
                "agent_name": "nightly-deploy",
                "skill_spec": "acme/infra:deploy",
                "host": "warp",
                "state": "INPROGRESS",
            },
        )
    return Tenant(
        principal_uid="bench",
        key_id=str(key["id"]),
        key=str(key["key"]),
        run_id=str(run["run_id"]),
        workload_token=str(run["workload_token"]),
    )


def delete_key(server: Server, admin_key: str, key_id: str) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
        _call(client, "DELETE", f"/api/v1/api-keys/{key_id}", expect=204)


def statuses_on_fresh_connections(
    server: Server, path: str, headers: dict[str, str], body: str, count: int
) -> list[int]:
    """POST ``count`` times, each on a new connection, so that every worker may answer."""
    found: list[int] = []
    for _ in range(count):
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            found.append(client.post(path, headers=headers, content=body).status_code)
    return found
