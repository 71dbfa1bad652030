"""The witness from the CLI, as a team runs it: `log witness-key` makes its key,
`log witness` serves it (a real process), and `log witness-push` has it cosign the
issuer's newest checkpoint, the issuer's consistency proof carrying it from one size to
the next."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.transparency import open_checkpoint, parse_verifier_key, token_sha256
from federation.transparency.cosignatures import parse_witness_key
from tests.cli.helpers import (
    assert_error_line,
    home_env,
    invoke_federation,
    invoke_main,
    issue_over_http,
    serve_home,
)
from tests.support import World, bearer, federation_command, free_port, spawn, stop
from tests.transparency.logs import log_key as transparency_log_key

pytestmark = pytest.mark.integration

NAME = "witness.example.test/cli"


def make_key(directory: Path) -> tuple[Path, str]:
    path = directory / "witness" / "key"
    made = invoke_main("log", "witness-key", "--name", NAME, "--out", str(path), env={})
    assert made.returncode == 0, made.stderr
    return path, made.stdout.strip()


@contextlib.contextmanager
def witness_process(
    key: Path, log_key: str, state: Path, env: dict[str, str], log_file: Path
) -> Iterator[str]:
    """`federation log witness` on a free loopback port, until it answers; stopped with
    a deadline after, whatever happens."""
    origin_hash = hashlib.sha256(log_key.split("+", 1)[0].encode()).hexdigest()
    for _ in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        args = ("log", "witness", "--key", str(key), "--log", log_key, "--state", str(state))
        with log_file.open("w") as output:
            process = spawn(
                federation_command(*args, "--port", str(port)),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while process.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/{origin_hash}/checkpoint", timeout=1).status_code:
                        break
                time.sleep(0.05)
            if process.poll() is not None:
                if "is in use" in log_file.read_text():
                    continue  # another process took the port meanwhile
                raise AssertionError(f"the witness exited: {log_file.read_text()}")
            assert time.monotonic() < deadline, log_file.read_text()
            yield url
            return
        finally:
            stop(process)
    raise AssertionError("the witness found no free port in 3 attempts")


def test_witness_key_writes_a_private_key_once_and_prints_its_verifier_key(
    tmp_path: Path,
) -> None:
    path, verifier_key = make_key(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    private = path.read_text()
    assert private.startswith(f"PRIVATE+KEY+{NAME}+")
    assert private not in verifier_key
    verifier = parse_witness_key(verifier_key)
    assert verifier.name == NAME
    # The private key's seed makes the printed public key.
    assert private.split("+")[3] == f"{verifier.key_id:08x}"

    again = invoke_main("log", "witness-key", "--name", NAME, "--out", str(path), env={})
    assert "is never overwritten" in assert_error_line(again, 78)
    assert path.read_text() == private


def test_a_bad_log_key_is_a_usage_error(tmp_path: Path) -> None:
    key, _ = make_key(tmp_path)
    state = str(tmp_path / "state.json")
    result = invoke_main(
        "log", "witness", "--key", str(key), "--log", "nonsense", "--state", state, env={}
    )
    assert "--log" in assert_error_line(result, 2)


def test_a_shared_witness_key_file_is_refused(tmp_path: Path) -> None:
    key, _ = make_key(tmp_path)
    key.chmod(0o644)
    log_key = transparency_log_key().verifier.verifier_key
    state = str(tmp_path / "state.json")
    result = invoke_main(
        "log", "witness", "--key", str(key), "--log", log_key, "--state", state, env={}
    )
    message = assert_error_line(result, 78)
    assert "accessible to other users" in message
    assert key.read_text().strip() not in message


def test_a_team_runs_a_witness_and_pushes_the_issuers_checkpoints(tmp_path: Path) -> None:
    home = tmp_path / "issuer"
    env = home_env(home)
    init = invoke_federation(home, env, "init")
    assert init.returncode == 0, init.stderr
    key_path, witness_key = make_key(tmp_path)
    state = tmp_path / "witness" / "state.json"
    with serve_home(home, env) as server:
        discovery = httpx.get(f"{server.url}/.well-known/openid-configuration").json()
        log_key = discovery["transparency_log"]["verifier_key"]
        agent = World.live(server).platform_agent()
        for _ in range(3):
            issue_over_http(server, agent)
        push_env = {**env, "WARP_API_KEY": server.admin_key}
        witness_env = {k: v for k, v in env.items() if not k.startswith("FEDERATION_")}
        with witness_process(key_path, log_key, state, witness_env, tmp_path / "w.log") as url:
            first = invoke_federation(
                home, push_env, "log", "witness-push", url, "--witness-key", witness_key
            )
            assert first.returncode == 0, first.stderr
            assert f"at size 3: {NAME} cosigned at" in first.stderr
            checkpoint = open_checkpoint(first.stdout, [parse_verifier_key(log_key)])
            assert checkpoint.size == 3
            assert_cosigned(first.stdout, witness_key)

            issued = [issue_over_http(server, agent) for _ in range(2)]
            # The server signs a checkpoint holding the token its proof is asked for.
            proved = httpx.get(
                f"{server.url}/api/v1/log/inclusion",
                params={"token_sha256": token_sha256(issued[-1]["token"])},
                headers=bearer(server.admin_key),
            )
            assert proved.json()["tree_size"] == 5, proved.text
            grown = invoke_federation(home, push_env, "log", "witness-push", url)
            assert grown.returncode == 0, grown.stderr
            assert "at size 5: cosigned (not verified" in grown.stderr
            assert_cosigned(grown.stdout, witness_key)
    recorded = json.loads(state.read_text())["logs"][checkpoint.origin]
    assert recorded["size"] == 5
    assert "Traceback" not in (tmp_path / "w.log").read_text()


def assert_cosigned(note: str, witness_key: str) -> None:
    """``note`` ends with the witness's line, an Ed25519 cosignature over the
    ``cosignature/v1`` message, checked by hand."""
    verifier = parse_witness_key(witness_key)
    text = note[: note.rfind("\n\n") + 1]
    line = note.rstrip("\n").rsplit("\n", 1)[1]
    assert line.startswith(f"\u2014 {NAME} ")
    raw = base64.b64decode(line.rsplit(" ", 1)[1])
    timestamp = int.from_bytes(raw[4:12], "big")
    assert abs(timestamp - time.time()) < 60
    message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
    Ed25519PublicKey.from_public_bytes(verifier.public_key).verify(raw[12:], message)
