"""Helpers for the tests: API setup through the real endpoints, a real server, and the
processes tests start (each in a process group of its own, stopped with a deadline)."""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol

import httpx
from click.testing import CliRunner
from fastapi.testclient import TestClient
from typing_extensions import TypeVar


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Agent:
    """A principal with a federate key and a running run: what a run's agent holds."""

    uid: str
    key: str
    run_id: str
    workload_token: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            **bearer(self.key),
            "X-Warp-Ambient-Workload-Token": self.workload_token,
            **extra,
        }


class Http(Protocol):
    """What :class:`World` sends requests through: the application in this process
    (starlette's ``TestClient``) or a live server (:class:`LiveHttp`)."""

    def request(
        self, method: str, url: str, *, json: Any = ..., params: Any = ..., headers: Any = ...
    ) -> Any: ...


class LiveHttp:
    """Requests to a live server, one connection each: nothing is left open to close."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(
        self, method: str, url: str, *, json: Any = None, params: Any = None, headers: Any = None
    ) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}{url}", json=json, params=params, headers=headers, timeout=10
        )


Client = TypeVar("Client", bound=Http, default=TestClient)


class World(Generic[Client]):
    """Sets up principals, keys and runs through the real HTTP API, as an admin would:
    the one way tests seed an issuer, over the application in this process or a live
    server's URL (:meth:`live`)."""

    def __init__(self, client: Client, admin_key: str) -> None:
        self.client: Client = client
        self.admin_key = admin_key
        self.admin = bearer(admin_key)

    @staticmethod
    def live(server: LiveServer, admin_key: str | None = None) -> World[LiveHttp]:
        """A world over ``server``'s HTTP API, as its admin (or as ``admin_key``)."""
        return World(LiveHttp(server.url), admin_key or server.admin_key)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """``method path`` as the admin."""
        return self.client.request(method, path, headers=self.admin, **kwargs)

    def _created(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.request("POST", path, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def principal(
        self,
        uid: str,
        *,
        type: str = "user",
        teams: tuple[str, ...] = ("t1",),
        email: str | None = "ada@example.com",
        display_name: str | None = "Ada",
    ) -> dict[str, Any]:
        body = {
            "type": type,
            "uid": uid,
            "teams": list(teams),
            "email": email if type == "user" else None,
            "display_name": display_name,
        }
        return self._created("/api/v1/principals", body)

    def api_key(
        self,
        principal_uid: str,
        *,
        scopes: tuple[str, ...] = ("federate",),
        type: str | None = None,
        expires_in: str = "30d",
        name: str = "test",
    ) -> str:
        kind = type or self._key_type(principal_uid)
        body = {
            "name": name,
            "type": kind,
            "principal_uid": principal_uid,
            "scopes": list(scopes),
            "expires_in": expires_in,
        }
        return str(self._created("/api/v1/api-keys", body)["key"])

    def _key_type(self, principal_uid: str) -> str:
        found = self.request("GET", f"/api/v1/principals/{principal_uid}")
        return "personal" if found.json()["type"] == "user" else "agent"

    def run(self, principal_uid: str, **attributes: Any) -> dict[str, Any]:
        body = {"principal_uid": principal_uid, "state": "INPROGRESS", **attributes}
        return self._created("/api/v1/runs", body)

    def set_state(self, run_id: str, state: str) -> None:
        response = self.request("PATCH", f"/api/v1/runs/{run_id}", json={"state": state})
        assert response.status_code == 200, response.text

    def agent(
        self,
        uid: str = "u1",
        *,
        type: str = "user",
        teams: tuple[str, ...] = ("t1",),
        email: str | None = "ada@example.com",
        **run: Any,
    ) -> Agent:
        """A principal with a federate key and a run in progress (``run`` overrides the
        run's attributes: environment ``e1``, agent ``nightly``, host ``warp``...)."""
        self.principal(uid, type=type, teams=teams, email=email)
        key = self.api_key(uid)
        defaults = {
            "environment": "e1",
            "agent_name": "nightly",
            "skill_spec": "acme/repo:deploy",
            "host": "warp",
        }
        created = self.run(uid, **{**defaults, **run})
        return Agent(
            uid=uid, key=key, run_id=created["run_id"], workload_token=created["workload_token"]
        )

    def platform_agent(self, **run: Any) -> Agent:
        """An agent with an id of its own (for servers that several tests share): a user
        of team ``platform`` whose run (``run`` overrides) is in environment ``staging``."""
        uid = f"ada-{secrets.token_hex(4)}"
        self.principal(uid, teams=("platform",), email=f"{uid}@example.com", display_name=None)
        key = self.api_key(uid, type="personal")
        defaults = {"team_uid": "platform", "environment": "staging", "host": "warp"}
        created = self.run(uid, **{**defaults, **run})
        return Agent(
            uid=uid, key=key, run_id=created["run_id"], workload_token=created["workload_token"]
        )

    def issue(self, agent: Agent, **body: Any) -> Any:
        payload = {"run_id": agent.run_id, "audience": "sts.amazonaws.com", **body}
        return self.client.request(
            "POST", "/api/v1/federate/issue-token", json=payload, headers=agent.headers()
        )

    def status_of(self, key: str) -> int:
        """What ``/api/v1/whoami`` answers ``key``: 200 while it authenticates."""
        return int(self.client.request("GET", "/api/v1/whoami", headers=bearer(key)).status_code)


LiveWorld = World[LiveHttp]
"""A world over a live server's HTTP API (:meth:`World.live`)."""


def free_port() -> int:
    """A loopback port the OS has just handed out (never a fixed one: tests run in
    parallel)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def federation_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "federation", *args]


# ---- processes ------------------------------------------------------------------------

STOP_DEADLINE = 10.0  # seconds a process gets after SIGTERM before SIGKILL
_running: set[subprocess.Popen[Any]] = set()


def spawn(args: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` for a process a test starts: in a session (and so a process
    group) of its own, so that :func:`stop` reaches its children too and a terminal's
    Ctrl-C reaches only the test run, which then stops it. The runner's ignored SIGINT
    (a run under ``nohup``) is inherited, which is why stopping never relies on SIGINT.
    Whatever a test leaves running is stopped when the run exits."""
    process: subprocess.Popen[Any] = subprocess.Popen(
        args, start_new_session=True, restore_signals=True, **options
    )
    _running.add(process)
    return process


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)  # the leader's pid is its group's id


def stop(process: subprocess.Popen[Any], deadline: float = STOP_DEADLINE) -> int:
    """SIGTERM to the process's group, SIGKILL to whatever is left after ``deadline``
    seconds; returns the exit code. Safe to call on a process that has exited."""
    try:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=deadline)
        # The leader gone, its children (workers) may not be: they share its group.
        _signal_group(process, signal.SIGKILL)
        return int(process.returncode)
    finally:
        _running.discard(process)


@atexit.register
def _stop_leftovers() -> None:
    for process in list(_running):
        stop(process, deadline=2.0)


def run(
    args: Sequence[str],
    *,
    timeout: float,
    input: str | None = None,
    **options: Any,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(..., capture_output=True, text=True, check=False)`` for a command
    a test runs, started by :func:`spawn`: on ``timeout`` its whole group is killed (not
    only the command), and ``subprocess.TimeoutExpired`` is raised as usual."""
    with spawn(
        args,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    ) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.communicate()
            raise
        finally:
            stop(process)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


# What a run's environment sets for the CLI; `invoke_main` clears the test's own.
RUN_VARIABLES = ("FEDERATION_", "WARP_", "OZ_", "GOOGLE_EXTERNAL_ACCOUNT_")


def invoke_main(
    *args: str, env: Mapping[str, str], cwd: Path | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The entry point's ``main`` in this process (quicker than a process, which
    imports the application again: about 2 s of CPU), with ``env`` as the only
    variables of :data:`RUN_VARIABLES`, in ``cwd``, reading ``input`` on stdin; its
    exit code and output in the shape :func:`run` returns (for the CLI tests'
    ``assert_error_line``). The environment, the working directory and the standard
    streams are restored after, whatever happens."""
    from federation.cli import main

    before = dict(os.environ)
    cleared: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(RUN_VARIABLES)
    }
    directory = contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext()
    with (
        directory,
        CliRunner().isolation(input=input, env={**cleared, **env}) as (stdout, stderr, _),
    ):
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    # NOTE: a process would take its changes to the environment with it; in this
    # process they would reach the next test, so a command that makes any fails here.
    changed = sorted(
        name
        for name in before.keys() | os.environ.keys()
        if before.get(name) != os.environ.get(name)
    )
    if changed:
        os.environ.clear()
        os.environ.update(before)
        raise AssertionError(f"`federation {' '.join(args)}` changed os.environ: {changed}")
    return subprocess.CompletedProcess(
        ["federation", *args], code, stdout.getvalue().decode(), stderr.getvalue().decode()
    )


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    admin_key: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None  # the `serve` process, when there is one

    def cli(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``federation`` entry point against this server."""
        return run(
            federation_command(*args),
            env={**self.env, **(env or {})},
            cwd=self.home,
            timeout=60,
            input=input,
        )


# What every test server runs with, unless a test says otherwise: no drain on SIGTERM
# (an idle server would wait a second to stop; tests/integration/test_drain.py turns it
# on), and no limit on key creation (servers shared by a module make a key per test;
# tests/api/test_key_creation_limits.py tests the limit).
TEST_SERVER_SETTINGS = {"shutdown_drain": "0", "rate_limit_key_creation": "off"}


def issuer_env(home: Path, database_url: str, port: int, **settings: str) -> dict[str, str]:
    """The environment of an issuer in ``home`` on ``port``, for its processes and the
    CLI: this process's, without its FEDERATION_*, WARP_* and OZ_* variables, then the
    test server's settings and ``settings`` (FEDERATION_* names)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FEDERATION_", "WARP_", "OZ_"))
    }
    env.update(
        {f"FEDERATION_{name.upper()}": value for name, value in TEST_SERVER_SETTINGS.items()}
    )
    env.update(
        FEDERATION_DATABASE_URL=database_url,
        FEDERATION_KEYS_DIR=str(home / "keys"),
        FEDERATION_ADMIN_KEY_FILE=str(home / "var" / "admin-api-key"),
        FEDERATION_PORT=str(port),
        FEDERATION_URL=f"http://127.0.0.1:{port}",
        **settings,
    )
    return env


def start_server(
    home: Path, database_url: str, settings: dict[str, str] | None = None, *, workers: int = 1
) -> Iterator[LiveServer]:
    """`federation init` (its ``main`` in this process: :func:`invoke_main`), then
    `federation serve` as a process on a free loopback port; stopped after (SIGTERM to
    its process group, SIGKILL after a deadline), even when the test fails.

    ``settings`` adds environment variables; several servers may share one ``home``;
    ``workers`` is `serve --workers`."""
    home.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = issuer_env(home, database_url, port, **(settings or {}))
        if attempt == 0:
            init = invoke_main("init", env=env, cwd=home)
            assert init.returncode == 0, init.stderr
        admin_key = (home / "var" / "admin-api-key").read_text().strip()
        log_path = home / f"server-{port}.log"
        with log_path.open("w") as log:
            process = spawn(
                federation_command("serve", "--workers", str(workers)),
                env=env,
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            if not _wait_healthy(process, url, log_path):
                continue  # another process took the port between its choice and the bind
            yield LiveServer(
                url=url, env=env, admin_key=admin_key, home=home, log=log_path, process=process
            )
            return
        finally:
            stop(process)
    raise AssertionError("server found no free port in 3 attempts")


def _wait_healthy(
    process: subprocess.Popen[bytes], url: str, log: Path, within: float = 30.0
) -> bool:
    """Until ``/healthz`` answers 200 (True); False when the server exited because its
    port was taken; AssertionError when it exited otherwise or did not start in time."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text()
            if f"port {url.rsplit(':', 1)[1]} is in use" in output:  # `serve` refused it
                return False
            raise AssertionError(f"server exited: {output}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        time.sleep(0.05)
    raise AssertionError(f"server did not start within {within} s: {log.read_text()}")


@contextmanager
def serve_issuer(
    home: Path, *, port: int | None = None, database_url: str | None = None, **overrides: Any
) -> Iterator[LiveServer]:
    """The real application (``create_app``: a fresh store and keys, the system clock)
    served from a thread on a loopback port chosen before its settings, so that its
    issuer URL names it. Quicker to start than a process; ``cli`` still runs the real
    entry point against it, with the same database and keys. The database is SQLite in
    ``home`` unless ``database_url`` names another (an empty one)."""
    from federation.api import create_app
    from federation.clock import SystemClock
    from federation.registry.principals import bootstrap_admin
    from federation.server.runtime import open_keyring
    from federation.settings import load_settings
    from federation.stand_ins.serving import serve
    from federation.store import Store

    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = issuer_env(home, database_url or f"sqlite:///{home}/var/federation.db", port)
    settings = load_settings(
        issuer=url,
        database_url=env["FEDERATION_DATABASE_URL"],
        keys_dir=home / "keys",
        admin_key_file=home / "var" / "admin-api-key",
        **{**TEST_SERVER_SETTINGS, **overrides},
    )
    clock = SystemClock()
    store = Store.from_url(settings.database_url)
    try:
        store.migrate()
        keyring = open_keyring(settings, clock, store)
        keyring.ensure()
        with store.session() as session:
            created = bootstrap_admin(session, clock.now())
        assert created is not None
        app = create_app(settings, store=store, keyring=keyring, clock=clock)
        with serve(app, port=port, lifespan=True) as served:
            assert served == url
            yield LiveServer(url=url, env=env, admin_key=created.raw, home=home, log=home / "none")
    finally:
        store.dispose()
