"""Stopping without losing a request: SIGTERM starts a drain in each worker.

granian stops a worker the moment it gets SIGTERM: it stops accepting, and it closes
every kept-alive connection that is idle at that moment. A client that has just sent a
request on such a connection (still on its way, or not yet read from the socket) gets
no answer: the connection closes under it, with a reset when its bytes arrive after the
close; so do the connections still waiting in the listen backlog. So a worker drains
first: it keeps accepting and answering, each answer with ``Connection: close`` so that
each client closes its connection after its answer and opens the next one elsewhere.
The drain ends once no request has been in flight for :data:`QUIET` seconds, or after
``FEDERATION_SHUTDOWN_DRAIN`` seconds however busy the worker is; then the worker stops
as granian stops: the requests in flight finish, idle connections close.

Only SIGTERM drains. SIGINT (Ctrl-C) stops at once, as granian does, and ends a drain.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# NOTE: long enough for whatever reached the worker's sockets before the signal to be
# read and dispatched, however busy the worker; short enough that an idle server stops
# at once (and a test suite's many servers with it)
QUIET = 1.0
TICK = 0.05  # seconds between two looks at whether the drain is over

# Connection-specific headers do not exist in HTTP/2 (RFC 9113, 8.2.2): there the
# connection's close, a GOAWAY, is the server's to send when it stops.
_CLOSABLE = frozenset({"1.0", "1.1"})


def _hand_over() -> None:
    """granian stops a worker on SIGINT as on SIGTERM; the drain has SIGTERM's handler."""
    os.kill(os.getpid(), signal.SIGINT)


class Drain:
    """A worker's drain: begun by :meth:`begin`, over when :meth:`over` says so; then
    ``stop`` is called, once. ``clock`` is monotonic seconds."""

    def __init__(
        self,
        limit: float,
        *,
        quiet: float = QUIET,
        clock: Callable[[], float] = time.monotonic,
        stop: Callable[[], None] = _hand_over,
    ) -> None:
        self.limit = limit
        self.quiet = quiet
        self.clock = clock
        self.stop = stop
        self.began: float | None = None
        self.in_flight = 0
        self.last_seen = 0.0  # when a request last started or ended
        self.ended = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def draining(self) -> bool:
        """Since :meth:`begin`: answers close their connections to the end."""
        return self.began is not None

    def begin(self) -> None:
        """Start draining (a second signal changes nothing). Runs on the event loop."""
        if self.began is not None or self.ended:
            return
        self.began = self.last_seen = self.clock()
        self._watch = asyncio.get_running_loop().create_task(self._watching())

    def over(self, now: float) -> bool:
        """Whether the drain begun is over at ``now``."""
        assert self.began is not None
        if now - self.began >= self.limit:
            return True
        return self.in_flight == 0 and now - self.last_seen >= self.quiet

    def finish(self) -> None:
        """End the drain and stop the worker (once)."""
        if not self.ended:
            self.ended = True
            self.stop()

    def abandon(self) -> None:
        """The worker is stopping by other means: end the drain without stopping it."""
        self.ended = True
        if self._watch is not None:
            self._watch.cancel()

    def request_started(self) -> None:
        self.in_flight += 1
        self.last_seen = self.clock()

    def request_ended(self) -> None:
        self.in_flight -= 1
        self.last_seen = self.clock()

    async def _watching(self) -> None:
        while not self.ended and not self.over(self.clock()):
            await asyncio.sleep(TICK)
        self.finish()


class DrainingApp:
    """``app`` with ``drain``: its requests counted, and while draining each HTTP/1
    answer with ``Connection: close``. With ``on_sigterm``, the application's lifespan
    gives SIGTERM to the drain (granian has set its handlers by then) and abandons the
    drain once the server shuts the application down."""

    def __init__(self, app: ASGIApp, drain: Drain, *, on_sigterm: bool = False) -> None:
        self.app = app
        self.drain = drain
        self.on_sigterm = on_sigterm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        closable = scope.get("http_version", "1.1") in _CLOSABLE

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and closable and self.drain.draining:
                message = {**message, "headers": _closing(message.get("headers", ()))}
            await send(message)

        self.drain.request_started()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.drain.request_ended()

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.on_sigterm:
            await self.app(scope, receive, send)
            return
        # NOTE: replaces granian's handler of SIGTERM; SIGINT's stays granian's
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.drain.begin)

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self.drain.abandon()
            return message

        await self.app(scope, receiving, send)


def _closing(headers: Any) -> list[tuple[bytes, bytes]]:
    kept = [(name, value) for name, value in headers if name.lower() != b"connection"]
    return [*kept, (b"connection", b"close")]


def draining(app: ASGIApp, seconds: float) -> ASGIApp:
    """``app`` as a server worker serves it: SIGTERM drains for up to ``seconds``
    (0: no drain, granian's SIGTERM as it is)."""
    if seconds <= 0:
        return app
    return DrainingApp(app, Drain(seconds), on_sigterm=True)
