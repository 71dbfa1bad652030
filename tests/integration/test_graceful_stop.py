"""`federation serve` stops on SIGTERM after finishing the requests in flight
(docs/operating.md, During an outage): every issue-token request the server had begun to receive
before the signal gets a whole 200 answer, each with its audit row, and the process
exits 0 within a bounded time.

The requests are held in flight on purpose: each client sends its headers and the first
bytes of its body, waits until the signal has been sent, then sends the rest. So the
server is mid-request when SIGTERM arrives, however fast or slow the machine is.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from tests.integration.test_store_outage import NO_LIMITS, agent
from tests.support import start_server

CLIENTS = 8
BOUND = 30.0  # seconds: no wait in this test is longer


running = contextmanager(start_server)


@dataclass(frozen=True)
class Outcome:
    status: int | None
    body: bytes | None
    error: str | None


def _held_request(
    url: str,
    headers: dict[str, str],
    body: bytes,
    begun: threading.Event,
    signalled: threading.Event,
    out: list[Outcome],
) -> None:
    def content() -> Iterator[bytes]:
        yield body[:8]
        begun.set()  # the first bytes are written once the next chunk is asked for
        signalled.wait(BOUND)
        yield body[8:]

    sent = {**headers, "Content-Type": "application/json", "Content-Length": str(len(body))}
    try:
        with httpx.Client(timeout=BOUND) as client:
            response = client.post(
                f"{url}/api/v1/federate/issue-token", content=content(), headers=sent
            )
        out.append(Outcome(response.status_code, response.content, None))
    except httpx.HTTPError as exc:
        out.append(Outcome(None, None, f"{type(exc).__name__}: {exc}"))


def test_sigterm_finishes_the_requests_in_flight_then_exits_0(tmp_path: Path) -> None:
    home = tmp_path / "server"
    with running(home, f"sqlite:///{home}/var/federation.db", NO_LIMITS) as server:
        assert server.process is not None
        headers, run_id = agent(server.url, server.admin_key)
        body = orjson.dumps({"run_id": run_id, "audience": "sts.amazonaws.com"})
        begun = [threading.Event() for _ in range(CLIENTS)]
        signalled = threading.Event()
        outcomes: list[Outcome] = []
        clients = [
            threading.Thread(
                target=_held_request,
                args=(server.url, headers, body, begun[i], signalled, outcomes),
            )
            for i in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        try:
            assert all(event.wait(BOUND) for event in begun)
            time.sleep(0.5)  # the server has read every request's headers
            server.process.send_signal(signal.SIGTERM)
        finally:
            signalled.set()
            for client in clients:
                client.join(BOUND)
        assert not any(client.is_alive() for client in clients)
        exit_code = server.process.wait(timeout=BOUND)
        log = server.log.read_text()

    assert [o.error for o in outcomes if o.error] == [], log
    assert [o.status for o in outcomes] == [200] * CLIENTS, log
    for outcome in outcomes:
        assert outcome.body is not None
        assert orjson.loads(outcome.body)["token"].count(".") == 2
    assert exit_code == 0, log
    with sqlite3.connect(home / "var" / "federation.db") as connection:
        (audited,) = connection.execute("SELECT count(*) FROM issued_tokens").fetchone()
    assert audited == CLIENTS
