"""The ports servers listen on, refused when anything holds them already.

The issuer's HTTP server (granian) binds each worker's socket with ``SO_REUSEPORT``, so
that its workers share one port. The kernel lets any socket of the same user that sets
that option join the port too, and spreads the connections over all of them: a second
``federation serve``, on another database, would start without a word and take a share
of the traffic. A socket bound *without* the option shares a port with no listener at
all, whatever options the listener set; such a probe, listening for a moment, tells
whether the port is free.

Between a free probe and the moment the server's workers listen (each loads the
application first: seconds), another server's probe would find the port free as well.
So the server then holds the port with a guard: a socket bound with ``SO_REUSEPORT``
(the server's own workers may join it) that never listens and, once bound, drops
``SO_REUSEADDR``, so that no probe can listen beside it. The kernel releases it when
the process exits.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from federation.errors import PortUnavailable


def listen(host: str, port: int, *, backlog: int = 128) -> socket.socket:
    """A socket listening on ``host:port`` (``port`` 0: any free one). It sets
    ``SO_REUSEADDR`` alone, as servers do (the connections an earlier server left in
    TIME_WAIT do not block it), and so cannot share the port with any listener."""
    sock = _socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise _unavailable(host, port, exc) from None
    return sock


def reserve(host: str, port: int) -> socket.socket:
    """Refuse ``host:port`` when anything listens there, then hold it for a server whose
    workers bind with ``SO_REUSEPORT``: the guard returned never accepts a connection;
    close it once the server has stopped."""
    listen(host, port, backlog=1).close()
    guard = _socket(host)
    try:
        guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # our workers join it
        guard.bind((host, port))
        # NOTE: a socket without SO_REUSEPORT (every probe) may listen beside a bound
        # one only when both set SO_REUSEADDR; now no probe can
        guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    except OSError as exc:
        guard.close()
        raise _unavailable(host, port, exc) from None
    return guard


def _socket(host: str) -> socket.socket:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise PortUnavailable(
            f"cannot listen on {host!r}: not an IP address (such as 127.0.0.1, 0.0.0.0 or ::)"
        ) from None
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return socket.socket(family, socket.SOCK_STREAM)


def _unavailable(host: str, port: int, exc: OSError) -> PortUnavailable:
    if exc.errno == errno.EADDRINUSE:
        return PortUnavailable(
            f"port {port} is in use on {host}: stop what listens there or choose another port"
        )
    shown = f"[{host}]" if ":" in host else host
    return PortUnavailable(f"cannot listen on {shown}:{port}: {exc.strerror or exc}")
