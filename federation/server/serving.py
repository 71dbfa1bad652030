"""The HTTP server the issuer runs on: granian, ASGI, one event loop per worker process.

Granian rather than uvicorn's multi-process mode: with two workers on uvicorn's shared
listening socket, every connection landed on one worker in 8 of 34 measured runs;
granian balanced all of them (the performance note; ``make bench`` measures it again).
The benchmarks serve their "hello" baseline through this same function, so that the
two are compared on one server configuration.
"""

from __future__ import annotations


def run(target: str, *, host: str, port: int, workers: int) -> None:
    """Serve the ASGI application factory ``target`` (``module:function``) until a
    signal; each worker process calls the factory once."""
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

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
        workers_kill_timeout=30,
    ).serve()
