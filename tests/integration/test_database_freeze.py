"""PostgreSQL frozen under a real server (SIGSTOP: the kernel still accepts and
acknowledges, nothing answers): every route answers 503 with ``Retry-After`` within 2 s,
``/readyz`` too, a write answered 503 is never committed, and each route answers again
by itself once the database is thawed, with no restart. The database is one of the
test's own, on its own port; the machine's is never touched."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.support import Agent, World, bearer, free_port, start_server

pytestmark = pytest.mark.postgres

running = contextlib.contextmanager(start_server)
NO_LIMITS = {
    "FEDERATION_RATE_LIMIT_KEY": "off",
    "FEDERATION_RATE_LIMIT_RUN": "off",
    "FEDERATION_RATE_LIMIT_AUTH_FAILURES": "off",
}
PROMISE = 2.0  # seconds a client waits, at most, for the 503 of a hung database
RECOVERY = 15.0  # seconds after the thaw by which every route answers again


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    expected: int
    headers: dict[str, str]
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Answer:
    call: Call
    seconds: float
    status: int
    headers: httpx.Headers
    body: Any


class LocalPostgres:
    """A PostgreSQL server of this test's own: initdb'd in ``root``, owned by the
    ``postgres`` user when run as root (the server refuses root), trust auth on
    127.0.0.1, no fsync. ``freeze`` stops the postmaster and every backend."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        self.process: subprocess.Popen[bytes] | None = None
        self._frozen: list[int] = []
        self._owner: dict[str, Any] = {}
        if os.geteuid() == 0:
            self._owner = {"user": "postgres", "group": "postgres", "extra_groups": []}

    def start(self, within: float = 60) -> None:
        bin_dir = _postgres_bin()
        if self._owner:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        initdb = subprocess.run(
            [
                *(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"),
                *("--no-sync", "-E", "UTF8", "--locale=C"),
            ],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=within,
            check=False,
            **self._owner,
        )
        assert initdb.returncode == 0, initdb.stderr
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        with (self.root / "postgres.log").open("w") as log:
            self.process = subprocess.Popen(
                [
                    *(str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.port)),
                    *(part for item in settings.items() for part in ("-c", "=".join(item))),
                ],
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._owner,
            )
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"postgres exited: {self.log()}")
            try:
                with psycopg.connect(self.url.replace("+psycopg", ""), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise AssertionError(f"postgres did not start: {self.log()}")

    def freeze(self) -> None:
        """SIGSTOP the postmaster, then every backend (each serves an open connection)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        self._frozen = [self.process.pid]
        for child in _children(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGSTOP)
                self._frozen.append(child)

    def thaw(self) -> None:
        children = _children(self.process.pid) if self.process is not None else []
        for pid in [*self._frozen, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    def stop(self, within: float = 15) -> None:
        """Thawed first (a stopped server acts on no signal but SIGKILL), then an
        immediate shutdown, then SIGKILL for whatever is left."""
        if self.process is None:
            return
        self.thaw()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # what `pg_ctl stop -m immediate` sends
            try:
                self.process.wait(timeout=within)
            except subprocess.TimeoutExpired:
                for child in _children(self.process.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                self.process.kill()
                self.process.wait(timeout=within)

    def count(self, table: str) -> int:
        with psycopg.connect(self.url.replace("+psycopg", ""), connect_timeout=2) as db:
            row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])

    def log(self) -> str:
        return (self.root / "postgres.log").read_text()[-4000:]


def _postgres_bin() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda path: int(path.parent.parent.name),
    )
    if not found:
        pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


def _children(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # NOTE: the command name may hold spaces and parentheses: fields follow the last ")"
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            children.append(int(entry.name))
    return children


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    # NOTE: not under tmp_path, whose parents only root may enter
    root = Path(tempfile.mkdtemp(prefix="federation-freeze-"))
    server = LocalPostgres(root, free_port())
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def test_a_frozen_database_answers_503_within_two_seconds_then_service_resumes(
    tmp_path: Path, own_postgres: LocalPostgres
) -> None:
    with running(tmp_path / "server", own_postgres.url, NO_LIMITS) as server:
        assert server.process is not None
        agent = World.live(server).agent()
        calls = _calls(server.admin_key, agent)
        warm = _round(server.url, calls)  # every route works, and the pools are warm
        for answer in warm:
            assert answer.status == answer.call.expected, (answer.call.name, answer.body)

        runs_before = own_postgres.count("runs")

        own_postgres.freeze()
        try:
            # the first round finds pooled connections whose statements hang; the
            # second, a pool that must connect again to a server that never answers
            frozen = [*_round(server.url, calls), *_round(server.url, calls)]
            thawed_at = time.monotonic()
        finally:
            own_postgres.thaw()
        recovered, polled = _recovery(server.url, calls, since=thawed_at)
        after = _round(server.url, calls)
        assert server.process.poll() is None  # the same server, never restarted
        created = [a for a in [*polled, *after] if a.call.name == "create run"]
        # a run answered 503 was never written, even once the database came back
        assert own_postgres.count("runs") - runs_before == sum(a.status == 201 for a in created)

    print("\nseconds to answer, warm:", [(a.call.name, round(a.seconds, 3)) for a in warm])
    print("seconds to 503:", [(a.call.name, round(a.seconds, 2)) for a in frozen])
    print("seconds from thaw to success:", {name: round(s, 2) for name, s in recovered.items()})
    for answer in frozen:
        assert answer.status == 503, (answer.call.name, answer.status, answer.body)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"].isdigit(), answer.call.name
        assert str(answer.body["type"]).endswith("/resource-unavailable/")
        assert answer.body["retryable"] is True
        assert answer.seconds <= PROMISE, (answer.call.name, answer.seconds)
    assert max(recovered.values()) <= RECOVERY
    for answer in after:
        assert answer.status == answer.call.expected, (answer.call.name, answer.body)


def _calls(admin_key: str, agent: Agent) -> list[Call]:
    admin = bearer(admin_key)
    return [
        Call("readyz", "GET", "/readyz", 200, {}),
        Call("list runs", "GET", "/api/v1/runs", 200, admin),
        Call("list tokens", "GET", "/api/v1/tokens", 200, admin),
        Call(
            "create run",
            "POST",
            "/api/v1/runs",
            201,
            admin,
            {"principal_uid": agent.uid, "state": "INPROGRESS"},
        ),
        Call(
            "issue token",
            "POST",
            "/api/v1/federate/issue-token",
            200,
            agent.headers(),
            {"run_id": agent.run_id, "audience": "sts.amazonaws.com"},
        ),
    ]


def _call(url: str, call: Call) -> Answer:
    # NOTE: the client waits far longer than the promise, so that a late answer is
    # measured rather than cut off; it is made before the clock starts (its TLS context
    # alone takes tens of milliseconds)
    with httpx.Client(base_url=url, timeout=30) as client:
        started = time.monotonic()
        response = client.request(call.method, call.path, headers=call.headers, json=call.body)
        seconds = time.monotonic() - started
    return Answer(call, seconds, response.status_code, response.headers, response.json())


def _round(url: str, calls: list[Call]) -> list[Answer]:
    """Every call at once, as independent clients send them."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: _call(url, call), calls))


def _recovery(
    url: str, calls: list[Call], *, since: float
) -> tuple[dict[str, float], list[Answer]]:
    """Seconds from ``since`` until each call first answers as it should (polled), and
    every answer on the way."""
    recovered: dict[str, float] = {}
    answers: list[Answer] = []
    deadline = since + RECOVERY
    while len(recovered) < len(calls) and time.monotonic() < deadline:
        for call in calls:
            if call.name in recovered:
                continue
            answers.append(_call(url, call))
            if answers[-1].status == call.expected:
                recovered[call.name] = time.monotonic() - since
        time.sleep(0.1)
    missing = [call.name for call in calls if call.name not in recovered]
    assert not missing, f"not answering {RECOVERY} s after the thaw: {missing}"
    return recovered, answers
