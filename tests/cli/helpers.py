"""Helpers for the CLI tests: set-up through the real HTTP API of a live server, checks
of the CLI's one-line errors, and verification with PyJWT (independent of our code)."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt
from click.testing import CliRunner

from tests.support import Agent, LiveServer, bearer, federation_command, free_port, start_server

# `with running_server(home, database_url) as server:` starts and always stops a server.
running_server = contextlib.contextmanager(start_server)


def unique(prefix: str) -> str:
    """An id no other test on the same server uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


class Admin:
    """Sets up principals, API keys and runs on a live server through its HTTP API."""

    def __init__(self, server: LiveServer, key: str | None = None) -> None:
        self.server = server
        self.headers = bearer(key or server.admin_key)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.server.url}{path}", headers=self.headers, timeout=10, **kwargs
        )

    def created(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.request("POST", path, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def principal(self, uid: str, *, teams: tuple[str, ...] = ("platform",)) -> None:
        self.created(
            "/api/v1/principals",
            {"type": "user", "uid": uid, "email": f"{uid}@example.com", "teams": list(teams)},
        )

    def api_key(self, uid: str, *, scopes: tuple[str, ...] = ("federate",)) -> dict[str, Any]:
        body = {"name": "test", "type": "personal", "principal_uid": uid, "scopes": list(scopes)}
        return self.created("/api/v1/api-keys", body)

    def run(self, uid: str, **attributes: str) -> dict[str, Any]:
        return self.created(
            "/api/v1/runs", {"principal_uid": uid, "state": "INPROGRESS", **attributes}
        )

    def agent(self, **attributes: str) -> Agent:
        """A user in team ``platform`` with a federate key and a run (INPROGRESS unless
        ``state`` says otherwise) in environment ``staging``."""
        uid = unique("ada")
        self.principal(uid)
        key = self.api_key(uid)["key"]
        defaults = {"team_uid": "platform", "environment": "staging", "host": "warp"}
        run = self.run(uid, **{**defaults, **attributes})
        return Agent(uid=uid, key=key, run_id=run["run_id"], workload_token=run["workload_token"])

    def set_state(self, run_id: str, state: str) -> None:
        response = self.request("PATCH", f"/api/v1/runs/{run_id}", json={"state": state})
        assert response.status_code == 200, response.text

    def whoami_status(self, key: str) -> int:
        response = httpx.get(f"{self.server.url}/api/v1/whoami", headers=bearer(key), timeout=10)
        return response.status_code


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
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FEDERATION_", "WARP_", "OZ_"))
    }
    env.update(
        FEDERATION_DATABASE_URL=database_url or f"sqlite:///{home}/var/federation.db",
        FEDERATION_KEYS_DIR=str(home / "keys"),
        FEDERATION_ADMIN_KEY_FILE=str(home / "var" / "admin-api-key"),
        FEDERATION_PORT=str(port),
        FEDERATION_URL=f"http://127.0.0.1:{port}",
    )
    return env


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


# What a run's environment sets for the CLI; `invoke_main` clears the test's own.
RUN_VARIABLES = ("FEDERATION_", "WARP_", "OZ_", "GOOGLE_EXTERNAL_ACCOUNT_")


def invoke_main(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """The entry point's ``main`` in this process (quicker than ``run_federation``),
    with ``env`` as the only variables of :data:`RUN_VARIABLES`; its exit code and
    output in the shape ``run_federation`` returns, for ``assert_error_line``."""
    from federation.cli import main

    cleared: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(RUN_VARIABLES)
    }
    with CliRunner().isolation(env={**cleared, **env}) as (stdout, stderr, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    return subprocess.CompletedProcess(
        ["federation", *args], code, stdout.getvalue().decode(), stderr.getvalue().decode()
    )
