"""Helpers for the CLI tests: the entry point's ``main`` run in this process (and, for
the few tests that need one, as a real process), set-up through the real HTTP API of a
live server, checks of the CLI's one-line errors, and verification with PyJWT
(independent of our code)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt

from tests.support import (
    Agent,
    LiveServer,
    federation_command,
    free_port,
    issuer_env,
)
from tests.support import invoke_main as invoke_main  # NOTE: where the suites import it


def unique(prefix: str) -> str:
    """An id no other test on the same server uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


def agent_env(agent: Agent) -> dict[str, str]:
    """What a run's environment holds: the agent's API key and the run's workload token."""
    return {"WARP_API_KEY": agent.key, "WARP_WORKLOAD_TOKEN": agent.workload_token}


def assert_error_line(
    result: subprocess.CompletedProcess[str], exit_code: int, *secret_values: str
) -> str:
    """The CLI's error contract: exit code, one ``federation: ...`` line on stderr,
    nothing on stdout, no traceback, no secret. Returns the message after the prefix."""
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("federation: "), result.stderr
    for value in secret_values:
        assert value not in result.stderr
    return lines[0].removeprefix("federation: ")


def verify_with_pyjwt(token: str, base_url: str, audience: str) -> dict[str, Any]:
    """Verify like a cloud: discovery → jwks_uri → key by kid → signature and claims."""
    discovery = httpx.get(f"{base_url}/.well-known/openid-configuration", timeout=10).json()
    jwks = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False, timeout=10)
    key = jwks.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience=audience,
        issuer=discovery["issuer"],
        options={"require": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]},
    )
    return claims


def home_env(home: Path, database_url: str | None = None) -> dict[str, str]:
    """The environment `start_server` gives its processes, for a home without a server."""
    return issuer_env(home, database_url or f"sqlite:///{home}/var/federation.db", free_port())


def run_federation(
    home: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real entry point in ``home``; a command that should exit but serves instead
    is killed after ``timeout`` seconds (and the test fails on the TimeoutExpired)."""
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        federation_command(*args),
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def issue_over_http(server: LiveServer, agent: Agent, **body: Any) -> dict[str, Any]:
    """A token from the HTTP API, as a run's agent asks for it."""
    response = httpx.post(
        f"{server.url}/api/v1/federate/issue-token",
        json={"run_id": agent.run_id, "audience": "sts.amazonaws.com", **body},
        headers=agent.headers(),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def invoke_cli(
    server: LiveServer, *args: str, env: Mapping[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """What ``server.cli(...)`` runs as a process, in this process: ``main`` with the
    server's environment and ``env``, in the server's home."""
    return invoke_main(*args, env={**server.env, **(env or {})}, cwd=server.home, input=input)


def invoke_federation(
    home: Path, env: Mapping[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """What ``run_federation`` runs as a process, in this process."""
    home.mkdir(parents=True, exist_ok=True)
    return invoke_main(*args, env=env, cwd=home)


@contextlib.contextmanager
def serve_home(home: Path, env: Mapping[str, str]) -> Iterator[LiveServer]:
    """A home where `federation init` ran, served as `federation serve` would serve it
    (its settings from ``env``, its schema checked, its keys loaded, no new admin key),
    by the real application from a thread on ``env``'s port; stopped after."""
    from federation.api import create_app
    from federation.clock import SystemClock
    from federation.server.runtime import open_keyring
    from federation.settings import load_settings
    from federation.stand_ins.serving import serve
    from federation.store import Store

    settings = load_settings(
        issuer=env["FEDERATION_URL"],
        database_url=env["FEDERATION_DATABASE_URL"],
        keys_dir=Path(env["FEDERATION_KEYS_DIR"]),
        admin_key_file=Path(env["FEDERATION_ADMIN_KEY_FILE"]),
    )
    clock = SystemClock()
    store = Store.from_url(settings.database_url, create=False)
    try:
        store.check_schema()
        keyring = open_keyring(settings, clock, store)
        keyring.load()
        app = create_app(settings, store=store, keyring=keyring, clock=clock)
        with serve(app, port=int(env["FEDERATION_PORT"]), lifespan=True) as url:
            assert url == env["FEDERATION_URL"]
            admin_key = settings.admin_key_file.read_text().strip()
            yield LiveServer(url=url, env=dict(env), admin_key=admin_key, home=home, log=home)
    finally:
        store.dispose()


@contextlib.contextmanager
def initialized_server(home: Path) -> Iterator[LiveServer]:
    """`federation init` (in this process) in ``home``, then :func:`serve_home`."""
    env = home_env(home)
    result = invoke_federation(home, env, "init")
    assert result.returncode == 0, result.stderr
    with serve_home(home, env) as server:
        yield server


# ---- processes the tests start --------------------------------------------------------


def pid_in(stderr: str) -> int | None:
    """The process id a command says it left running: ``... (pid 1234)``."""
    found = re.search(r"\(pid ([0-9]+)\)", stderr)
    return int(found.group(1)) if found else None


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def stop_process(pid: int, *, timeout: float = 10.0) -> None:
    """SIGTERM, and SIGKILL when ``pid`` has not stopped within ``timeout`` seconds; a
    process that outlives both fails the test."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sent)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while is_running(pid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        else:
            return
    raise AssertionError(f"process {pid} outlived SIGKILL")
