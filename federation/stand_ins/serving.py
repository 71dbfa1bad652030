"""Serving an ASGI application on loopback from a thread, for stand-ins and tests."""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from federation._internal import ports


@contextmanager
def serve(
    app: ASGIApp,
    *,
    port: int = 0,
    certificate: Path | None = None,
    private_key: Path | None = None,
    timeout: float = 10.0,
    lifespan: bool = False,
) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 (``port`` 0: any free one) until the block ends; yields
    its base URL (https when a certificate and key are given). ``lifespan``: run the
    application's start-up and shut-down (its background work) too.
    :class:`~federation.errors.PortUnavailable` when something listens on ``port``."""
    # NOTE: bound here, not by uvicorn, whose failure would be a log line and a thread
    # that exits; the socket shares the port with no other listener
    listening = ports.listen("127.0.0.1", port)
    try:
        with _serving(app, listening, certificate, private_key, timeout, lifespan) as url:
            yield url
    finally:
        listening.close()


@contextmanager
def _serving(
    app: ASGIApp,
    listening: socket.socket,
    certificate: Path | None,
    private_key: Path | None,
    timeout: float,
    lifespan: bool,
) -> Iterator[str]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=listening.getsockname()[1],
        log_level="warning",
        lifespan="on" if lifespan else "off",
        timeout_graceful_shutdown=2,
        ssl_certfile=str(certificate) if certificate else None,
        ssl_keyfile=str(private_key) if private_key else None,
    )
    server = uvicorn.Server(config)
    run = functools.partial(server.run, sockets=[listening])
    thread = threading.Thread(target=run, name="stand-in", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the loopback server did not start")
            time.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if certificate else "http"
        yield f"{scheme}://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
