"""The README walk-through (examples/walkthrough.sh) against a real server, twice; and
from a fresh shell, which finds the project's `federation` and the server's port itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import LiveServer, bearer, run

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "walkthrough.sh"
SUBJECT = "teams:platform/environment:staging"


def run_walkthrough(server: LiveServer) -> subprocess.CompletedProcess[str]:
    env = {
        **server.env,
        # The `federation` command of this interpreter, whatever the shell's PATH says.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), server.env.get("PATH", "")]),
        # A stray key in the user's shell must not be used for the admin steps.
        "WARP_API_KEY": "wk-not-an-admin-key",
    }
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env=env,
        cwd=server.home,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )


def test_the_script_is_executable() -> None:
    assert SCRIPT.stat().st_mode & 0o777 == 0o755
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in SCRIPT.read_text()


def test_walkthrough_ends_with_a_verified_token_and_runs_twice(live_server: LiveServer) -> None:
    for _ in range(2):  # unique ids per run: the second run must not collide
        result = run_walkthrough(live_server)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        assert f"verified subject: {SUBJECT}\n" in result.stdout
        assert "== " in result.stdout
        assert "federation: verified: signed by" in result.stderr

    # The server issued both tokens: two audit rows for the walk-through's subject.
    audit = httpx.get(
        f"{live_server.url}/api/v1/tokens",
        headers=bearer(live_server.admin_key),
        params={"audience": "sts.amazonaws.com"},
        timeout=10,
    )
    assert audit.status_code == 200, audit.text
    rows = [row for row in audit.json()["items"] if row["subject"] == SUBJECT]
    assert len(rows) == 2
    assert len({row["principal_uid"] for row in rows}) == 2


def test_walkthrough_from_a_fresh_shell_finds_the_server_by_its_port(
    live_server: LiveServer,
) -> None:
    """What a second terminal beside `FEDERATION_PORT=... make run` holds: no virtual
    environment on PATH, no FEDERATION_URL, only the server's port (an OS-assigned
    one, never 8080) and where its admin key file is; run from another directory."""
    if not (ROOT / ".venv" / "bin" / "federation").is_file():
        pytest.skip("the project's .venv (made by `make install`) is not there")
    port = live_server.env["FEDERATION_PORT"]
    assert port != "8080"
    env = {
        "HOME": str(live_server.home),
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "FEDERATION_PORT": port,
        "FEDERATION_ADMIN_KEY_FILE": live_server.env["FEDERATION_ADMIN_KEY_FILE"],
    }
    for _ in range(2):
        result = run(["bash", str(SCRIPT)], env=env, cwd=live_server.home, timeout=55)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        assert f"verified subject: {SUBJECT}\n" in result.stdout
        assert "workload token (wlt-...) is kept in a variable" in result.stdout
        assert "wlt-" not in result.stdout.replace("(wlt-...)", "")  # never printed
