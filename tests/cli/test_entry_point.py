"""The real entry points as processes: the installed ``federation`` console script and
``python -m federation``. The other CLI tests run ``main`` in process; these few keep the
process itself covered: its exit codes, its streams, `init` on a fresh home, and one
`issue-token` end to end."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from federation import __version__
from tests.cli.helpers import (
    agent_env,
    assert_error_line,
    home_env,
    invoke_federation,
    run_federation,
    serve_home,
    verify_with_pyjwt,
)
from tests.support import World, free_port

AWS = "sts.amazonaws.com"


def console_script(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``federation`` script that installing the package puts next to this
    interpreter; killed if it has not ended after 60 s."""
    script = Path(sys.executable).with_name("federation")
    assert script.is_file(), f"no console script at {script}: install the package"
    return subprocess.run(
        [str(script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_console_script_prints_its_help(tmp_path: Path) -> None:
    result = console_script("--help", env=home_env(tmp_path), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("Usage: federation [OPTIONS] COMMAND [ARGS]...")
    commands = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert {"init", "serve", "issue-token", "exchange", "keys"} <= commands


def test_the_console_script_keeps_the_one_line_error_contract(tmp_path: Path) -> None:
    env = {**home_env(tmp_path), "FEDERATION_URL": "https://issuer.example.com"}
    result = console_script("whoami", env=env, cwd=tmp_path)

    message = assert_error_line(result, 2)
    assert "no API key" in message


def test_python_dash_m_prints_the_version(tmp_path: Path) -> None:
    result = run_federation(tmp_path, home_env(tmp_path), "--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"federation, version {__version__}\n"


def test_init_then_issue_token_as_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = home_env(home)
    init = run_federation(home, env, "init")
    assert init.returncode == 0, init.stderr
    key_file = home / "var" / "admin-api-key"
    [admin_key] = [line for line in init.stdout.splitlines() if line.startswith("wk-")]
    assert key_file.read_text().strip() == admin_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    created = [line.split()[3] for line in init.stdout.splitlines() if "created" in line]
    assert sorted(created) == ["ES256", "RS256"]
    assert len(list((home / "keys").glob("*.pem"))) == 2

    with serve_home(home, env) as server:
        agent = World.live(server).platform_agent()
        run = {**env, **agent_env(agent), "OZ_RUN_ID": agent.run_id}
        result = run_federation(
            home, run, "issue-token", "--run-id", agent.run_id, "--audience", AWS
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        claims = verify_with_pyjwt(result.stdout.removesuffix("\n"), server.url, AWS)
        assert claims["sub"] == f"user:{agent.uid}"
        assert claims["run_id"] == agent.run_id

        refused = run_federation(home, run, "issue-token", "--audience", AWS, "--duration", "1x")
        message = assert_error_line(refused, 2, agent.key, agent.workload_token)
        assert "duration is not valid" in message


@pytest.mark.parametrize(
    "args",
    [
        ("no-such-command",),
        ("issue-token", "--audience", "a", "--run-id", "r", "--duration", "1x"),
        ("verify", "a.b.c", "--audience", "a"),
        ("decode", "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln"),
    ],
    ids=["usage", "bad-duration", "unreachable", "success"],
)
def test_main_in_process_answers_as_the_process_does(tmp_path: Path, args: tuple[str, ...]) -> None:
    """What the other tests rely on: in process, ``main`` gives the same exit code,
    stdout and stderr as the real entry point."""
    env = {
        **home_env(tmp_path),
        "FEDERATION_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "WARP_API_KEY": "wk-" + "k" * 43,
    }
    process = run_federation(tmp_path, env, *args)
    in_process = invoke_federation(tmp_path, env, *args)

    assert (in_process.returncode, in_process.stdout, in_process.stderr) == (
        process.returncode,
        process.stdout,
        process.stderr,
    )
    assert process.stdout or process.stderr.startswith("federation: ")
