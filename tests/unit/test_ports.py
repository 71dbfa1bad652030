"""Ports a server listens on (``federation._internal.ports``), with real sockets on
127.0.0.1: a port anything listens on is refused, a reserved one too, and the reserving
server's own workers (bound as granian binds them) still listen on it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from federation._internal import ports
from federation.errors import PortUnavailable


@pytest.fixture
def opened() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for sock in made:
        sock.close()


def listener(opened: list[socket.socket], *, reuse_port: bool, port: int = 0) -> int:
    """A socket listening on 127.0.0.1, as most servers bind (``SO_REUSEADDR``) or as
    granian binds its workers (``SO_REUSEPORT`` too); its port."""
    sock = socket.socket()
    opened.append(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(8)
    return int(sock.getsockname()[1])


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuse-port"])
def test_a_port_anything_listens_on_is_refused(
    opened: list[socket.socket], reuse_port: bool
) -> None:
    port = listener(opened, reuse_port=reuse_port)
    for take in (ports.listen, ports.reserve):
        with pytest.raises(PortUnavailable) as refused:
            take("127.0.0.1", port)
        assert refused.value.detail is not None
        assert refused.value.detail.startswith(f"port {port} is in use on 127.0.0.1")


def test_a_reserved_port_is_refused_before_its_server_listens(
    opened: list[socket.socket],
) -> None:
    guard = ports.reserve("127.0.0.1", 0)  # the server's workers are still starting
    opened.append(guard)
    port = guard.getsockname()[1]
    with pytest.raises(PortUnavailable, match=f"port {port} is in use"):
        ports.reserve("127.0.0.1", port)  # a second server
    with pytest.raises(PortUnavailable, match=f"port {port} is in use"):
        ports.listen("127.0.0.1", port)
    # the reserving server's workers bind as granian binds them, beside the guard
    listener(opened, reuse_port=True, port=port)
    listener(opened, reuse_port=True, port=port)
    with pytest.raises(PortUnavailable, match=f"port {port} is in use"):
        ports.reserve("127.0.0.1", port)


def test_a_port_is_free_again_once_its_server_has_gone(opened: list[socket.socket]) -> None:
    server = ports.listen("127.0.0.1", 0)
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    accepted, _ = server.accept()
    accepted.close()  # the server closes first: its side of the connection waits (TIME_WAIT)
    assert client.recv(1) == b""
    client.close()
    server.close()
    guard = ports.reserve("127.0.0.1", port)
    opened.append(guard)
    guard.close()
    opened.append(ports.listen("127.0.0.1", port))


def test_a_listening_socket_is_served_on_any_free_port(opened: list[socket.socket]) -> None:
    sock = ports.listen("127.0.0.1", 0)
    opened.append(sock)
    port = sock.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        accepted, _ = sock.accept()
        accepted.close()


@pytest.mark.parametrize("host", ["localhost", "issuer.example.com", ""])
def test_an_address_that_is_not_an_ip_is_refused_in_words(host: str) -> None:
    with pytest.raises(PortUnavailable, match="not an IP address"):
        ports.reserve(host, 8080)
