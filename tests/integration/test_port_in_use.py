"""A port in use is refused (docs/operating.md, Stopping and ports): `federation serve`
and the stand-ins exit with one line, `port N is in use`, and a non-zero code, whether
another issuer holds the port (granian shares a port with `SO_REUSEPORT`, so a second
issuer would otherwise start and take a share of the traffic) or any other listener
does. Real processes and real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.cli.helpers import assert_error_line, home_env, invoke_federation
from tests.exchange.gcp_helpers import PROVIDER
from tests.support import federation_command, run, start_server

EXIT_CONFIG = 78
WITHIN = 60.0  # seconds a refused command gets to exit (it would serve on otherwise)

running = contextmanager(start_server)


@contextmanager
def listening(*, reuse_port: bool) -> Iterator[int]:
    """A listener of another kind on a free loopback port, bound as most servers bind
    (``SO_REUSEADDR``) or as granian does (``SO_REUSEPORT`` too); its port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def initialized(home: Path, port: int) -> dict[str, str]:
    """A home where `federation init` ran, its issuer to listen on ``port``."""
    env = {
        **home_env(home),
        "FEDERATION_PORT": str(port),
        "FEDERATION_URL": f"http://127.0.0.1:{port}",
    }
    assert invoke_federation(home, env, "init").returncode == 0
    return env


def test_a_second_serve_on_another_database_is_refused(tmp_path: Path) -> None:
    first = tmp_path / "first"
    with running(first, f"sqlite:///{first}/var/federation.db") as server:
        port = int(server.url.rsplit(":", 1)[1])
        second = tmp_path / "second"
        refused = run(
            federation_command("serve"),
            env=initialized(second, port),
            cwd=second,
            timeout=WITHIN,
        )
        message = assert_error_line(refused, EXIT_CONFIG)
        assert f"port {port} is in use on 127.0.0.1" in message
        # every connection still reaches the first server: its discovery names its issuer
        for _ in range(20):
            with httpx.Client(timeout=10) as client:  # a new connection each time
                found = client.get(f"{server.url}/.well-known/openid-configuration")
            assert found.json()["issuer"] == server.url


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuse-port"])
def test_serve_refuses_a_port_any_listener_holds(tmp_path: Path, reuse_port: bool) -> None:
    with listening(reuse_port=reuse_port) as port:
        refused = run(
            federation_command("serve"),
            env=initialized(tmp_path, port),
            cwd=tmp_path,
            timeout=WITHIN,
        )
    message = assert_error_line(refused, EXIT_CONFIG)
    assert f"port {port} is in use on 127.0.0.1" in message


@pytest.mark.parametrize(
    "command",
    [
        ("stand-in", "aws", "--issuer", "https://issuer.example.com"),
        ("stand-in", "gcp", "--issuer", "https://issuer.example.com", "--provider", PROVIDER),
    ],
    ids=["aws", "gcp"],
)
@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuse-port"])
def test_a_stand_in_refuses_a_port_in_use(
    tmp_path: Path, command: tuple[str, ...], reuse_port: bool
) -> None:
    with listening(reuse_port=reuse_port) as port:
        refused = run(
            federation_command(*command, "--port", str(port)),
            env=home_env(tmp_path),
            cwd=tmp_path,
            timeout=WITHIN,
        )
    message = assert_error_line(refused, EXIT_CONFIG)
    assert f"port {port} is in use on 127.0.0.1" in message
