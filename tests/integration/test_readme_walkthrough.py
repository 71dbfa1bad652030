"""The README's walk-through, its shell block taken from README.md as it stands and run
as written, against a real server on a port the OS hands out (never 8080): the reader
sets only `FEDERATION_PORT`, as the README says, and the block ends with a verified
token whose claims are those the README shows. Then what the README warns about holds:
with step 4's `WARP_API_KEY` exported, management commands are refused until it is
unset."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.markdown import README, fenced_blocks, section
from tests.support import LiveServer, bearer, run, start_server

WALKTHROUGH = section(README.read_text(encoding="utf-8"), "Walk-through")
# What the test adds after the README's block, in the same shell: the README's warning.
AFTER = """
if federation principals list >/dev/null 2>&1; then
    echo "a management command ran with the run's WARP_API_KEY" >&2
    exit 3
fi
unset WARP_API_KEY
federation principals list
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    home = tmp_path / "checkout"
    yield from start_server(home, f"sqlite:///{home}/var/federation.db")


def script() -> str:
    """The walk-through's shell blocks, as one script that stops at the first failure."""
    blocks = [block.text for block in fenced_blocks(WALKTHROUGH) if block.language == "sh"]
    assert blocks, "the README's walk-through has no sh block"
    return "set -euo pipefail\n" + "\n".join(blocks) + AFTER


def documented_claims() -> dict[str, Any]:
    (claims,) = [block.text for block in fenced_blocks(WALKTHROUGH) if block.language == "json"]
    document: dict[str, Any] = json.loads(claims)
    return document


def json_documents(output: str) -> list[dict[str, Any]]:
    """The indented JSON documents `decode` and `verify` print, in order."""
    documents, lines = [], output.splitlines()
    for start, line in enumerate(lines):
        if line == "{":
            end = lines.index("}", start)
            documents.append(json.loads("\n".join(lines[start : end + 1])))
    return documents


def reader_environment(server: LiveServer) -> dict[str, str]:
    """A reader's shell: nothing of the issuer's set but the port the README tells them
    to export, and the `federation` command of this interpreter on PATH (the README
    puts the checkout's .venv/bin first, which a test checkout does not have)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FEDERATION_", "WARP_", "OZ_"))
    }
    env["FEDERATION_PORT"] = server.env["FEDERATION_PORT"]
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def test_the_readme_walkthrough_runs_as_written_on_another_port(server: LiveServer) -> None:
    assert server.env["FEDERATION_PORT"] != "8080"
    path = server.home / "walkthrough.sh"
    path.write_text(script(), encoding="utf-8")

    result = run(["bash", str(path)], env=reader_environment(server), cwd=server.home, timeout=90)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert f"federation: verified: signed by {server.url}" in result.stderr
    decoded, verified = json_documents(result.stdout)[-2:]
    assert decoded["claims"] == verified["claims"]

    claims, shown = dict(verified["claims"]), documented_claims()
    assert set(claims) == set(shown)
    assert shown["iss"] == "http://127.0.0.1:8080"  # the README's port; here the OS's
    assert claims["iss"] == server.url
    assert claims["exp"] - claims["iat"] == shown["exp"] - shown["iat"] == 15 * 60
    for name in ("iat", "nbf", "exp", "jti", "iss"):
        del claims[name], shown[name]
    assert claims == shown

    # The server recorded the one token the walk-through asked for.
    audit = httpx.get(
        f"{server.url}/api/v1/tokens",
        headers=bearer(server.admin_key),
        params={"run_id": "run-1"},
        timeout=10,
    )
    assert audit.status_code == 200, audit.text
    assert [row["subject"] for row in audit.json()["items"]] == [shown["sub"]]
