"""The HTTP server the issuer runs on: granian, ASGI, one event loop per worker process.

Granian rather than uvicorn's multi-process mode: with two workers on uvicorn's shared
listening socket, every connection landed on one worker in 8 of 34 measured runs;
granian balanced all of them (the performance note; ``make bench`` measures it again).
The benchmarks serve their "hello" baseline through this same function, so that the
two are compared on one server configuration.

Granian balances with ``SO_REUSEPORT``, which would let a second server share the port
unnoticed: the port is reserved first (:mod:`federation._internal.ports`), and a port
anything listens on is refused.
"""

from __future__ import annotations

import math
import socket

from federation._internal import ports

# Seconds a worker gets to finish its requests in flight after its drain (the
# database's deadlines end any request well before) before it is killed.
FINISH_WITHIN = 30


def run(
    target: str,
    *,
    host: str,
    port: int,
    workers: int,
    drain: float = 0,
    reserved: socket.socket | None = None,
) -> None:
    """Serve the ASGI application factory ``target`` (``module:function``) until a
    signal; each worker process calls the factory once. ``drain``: the seconds a worker
    may drain after SIGTERM (see :mod:`federation.server.draining`). ``reserved``: the
    port's guard, when the caller took it with :func:`federation._internal.ports.reserve`
    (else it is taken here: :class:`~federation.errors.PortUnavailable` when the port is
    in use); it is closed when the server stops."""
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    guard = reserved or ports.reserve(host, port)
    try:
        Granian(
            target,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            loop=Loops.uvloop,
            factory=True,
            log_level=LogLevels.warning,
            respawn_failed_workers=True,
            workers_kill_timeout=FINISH_WITHIN + math.ceil(drain),
        ).serve()
    finally:
        guard.close()
