"""A worker's drain (``federation.server.draining``): when it is over, and what it does to
the answers meanwhile. The signal and granian's part are driven by the real server in
tests/integration/test_drain.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from federation.server.draining import Drain, DrainingApp, draining


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Stops:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-type", b"text/plain"), (b"Connection", b"keep-alive")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


async def call(app: Any, http_version: str = "1.1") -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "http_version": http_version, "method": "GET", "path": "/"}
    await app(scope, receive, send)
    return sent


def connection_headers(sent: list[Message]) -> list[bytes]:
    return [value for name, value in sent[0]["headers"] if name.lower() == b"connection"]


def test_the_drain_ends_after_a_quiet_second_or_at_its_limit() -> None:
    clock = Clock()
    drain = Drain(5.0, clock=clock, stop=Stops())
    drain.began = drain.last_seen = clock.now
    clock.now += 0.9
    assert not drain.over(clock.now)
    drain.request_started()
    clock.now += 4.0
    assert not drain.over(clock.now)  # a request in flight holds it open...
    clock.now += 0.1
    assert drain.over(clock.now)  # ...until its limit
    drain.request_ended()
    quiet = Drain(5.0, clock=clock, stop=Stops())
    quiet.began = clock.now
    quiet.request_started()
    clock.now += 2.0
    quiet.request_ended()
    clock.now += 0.99
    assert not quiet.over(clock.now)
    clock.now += 0.01
    assert quiet.over(clock.now)


def test_answers_close_their_connection_only_while_draining() -> None:
    async def scenario() -> None:
        stops = Stops()
        drain = Drain(30.0, stop=stops)
        app = DrainingApp(answer, drain)
        assert connection_headers(await call(app)) == [b"keep-alive"]
        drain.begin()
        drain.begin()  # a second signal changes nothing
        assert connection_headers(await call(app)) == [b"close"]
        assert connection_headers(await call(app, "1.0")) == [b"close"]
        # HTTP/2 has no such header: the server's GOAWAY closes the connection
        assert connection_headers(await call(app, "2")) == [b"keep-alive"]
        assert drain.in_flight == 0
        drain.abandon()
        assert stops.count == 0

    asyncio.run(scenario())


def test_the_drain_stops_the_worker_once_when_it_is_over() -> None:
    async def scenario() -> int:
        stops = Stops()
        drain = Drain(30.0, quiet=0.05, stop=stops)
        drain.begin()
        deadline = time.monotonic() + 10
        while stops.count == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        drain.finish()
        return stops.count

    assert asyncio.run(scenario()) == 1


def test_a_worker_stopping_otherwise_abandons_the_drain() -> None:
    async def scenario() -> int:
        stops = Stops()
        drain = Drain(30.0, quiet=0.05, stop=stops)
        drain.begin()
        drain.abandon()
        watching = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.gather(*watching, return_exceptions=True)
        drain.finish()
        late = Drain(30.0, stop=stops)
        late.abandon()  # the worker stops before any SIGTERM: a later one starts nothing
        late.begin()
        assert not late.draining
        return stops.count

    assert asyncio.run(scenario()) == 0


@pytest.mark.parametrize("seconds", [0, -1])
def test_no_drain_serves_the_application_itself(seconds: float) -> None:
    assert draining(answer, seconds) is answer
