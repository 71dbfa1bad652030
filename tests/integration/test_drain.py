"""SIGTERM under keep-alive traffic (docs/operating.md, Stopping and ports): every
request that reached `federation serve` before the signal gets a whole answer, and so
does every one a client sends on a kept-alive connection during the drain; each such
answer carries `Connection: close`, and the server then closes the connection in order
(never a reset). The process exits 0 and every token has its audit row.

32 kept-alive connections: on half of them a request is sent just before the signal, on
the other half just after. An answer the server gave before its worker noticed the
signal keeps its connection alive, and the client sends its next request on it. One more
request is held in flight across the signal (its headers and the first bytes of its body
sent before it, the rest at the end), so the drain cannot end for want of requests while
the test is still sending.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.support import Agent, World, start_server

CONNECTIONS = 32
BOUND = 60.0  # seconds: no wait in this test is longer
ROUNDS = 20  # requests a connection carries at most after the signal
SETTINGS = {
    # NOTE: one key and one run ask every token: no rate limit applies
    "FEDERATION_RATE_LIMIT_KEY": "off",
    "FEDERATION_RATE_LIMIT_RUN": "off",
    "FEDERATION_RATE_LIMIT_AUTH_FAILURES": "off",
    "FEDERATION_SHUTDOWN_DRAIN": str(int(BOUND)),  # the held request ends it sooner
}

running = contextmanager(start_server)


@dataclass(frozen=True)
class Answer:
    status: int
    connection: str | None
    body: bytes
    then: str  # what the connection did after the answer: "closed" or what went wrong


def _issue_request(agent: Agent) -> bytes:
    body = orjson.dumps({"run_id": agent.run_id, "audience": "sts.amazonaws.com"})
    headers = {
        **agent.headers(),
        "Host": "issuer",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST /api/v1/federate/issue-token HTTP/1.1\r\n{head}\r\n".encode() + body


@contextmanager
def _connections(url: str, count: int) -> Iterator[list[socket.socket]]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    made = [socket.create_connection((host, int(port)), timeout=BOUND) for _ in range(count)]
    try:
        yield made
    finally:
        for connection in made:
            connection.close()


def _conversation(connection: socket.socket, request: bytes) -> list[Answer]:
    """The answers on ``connection`` (its request sent) until one closes it: an answer
    the server gave before its drain began keeps the connection alive, and the client
    sends its next request on it, as a client with more to ask does."""
    answers = [_answer(connection)]
    while answers[-1].then == "kept alive" and len(answers) < ROUNDS:
        connection.sendall(request)
        answers.append(_answer(connection))
    return answers


def _answer(connection: socket.socket) -> Answer:
    """The next answer on ``connection``, and whether the server then closed it."""
    response = http.client.HTTPResponse(connection, method="POST")
    try:
        response.begin()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return Answer(0, None, b"", f"no answer: {type(exc).__name__}: {exc}")
    finally:
        response.close()
    if response.getheader("connection") != "close":
        return Answer(response.status, response.getheader("connection"), body, "kept alive")
    try:
        rest = connection.recv(1)
    except OSError as exc:
        return Answer(response.status, "close", body, f"then {type(exc).__name__}")
    return Answer(response.status, "close", body, "closed" if rest == b"" else f"then {rest!r}")


@pytest.mark.parametrize(
    "signalled",
    ["service", "server"],
    ids=["sigterm-to-every-process", "sigterm-to-the-server-process"],
)
def test_sigterm_answers_what_was_sent_and_closes_kept_alive_connections(
    tmp_path: Path, signalled: str
) -> None:
    home = tmp_path / "server"
    with running(home, f"sqlite:///{home}/var/federation.db", SETTINGS) as server:
        assert server.process is not None
        request = _issue_request(World.live(server).agent())
        with _connections(server.url, CONNECTIONS + 1) as connections:
            held, kept = connections[0], connections[1:]
            for connection in kept:
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: issuer\r\n\r\n")
                warm = http.client.HTTPResponse(connection)
                warm.begin()
                warm.read()
                assert (warm.status, warm.getheader("connection")) == (200, None)
                warm.close()
            before, during = kept[: CONNECTIONS // 2], kept[CONNECTIONS // 2 :]
            held.sendall(request[:-8])
            for connection in before:
                connection.sendall(request)
            if signalled == "service":  # as systemd stops a service: each of its processes
                os.killpg(server.process.pid, signal.SIGTERM)
            else:  # as a container runtime does: the server's process alone
                server.process.send_signal(signal.SIGTERM)
            answered_before = [_conversation(connection, request) for connection in before]
            for connection in during:
                connection.sendall(request)
            answered_during = [_conversation(connection, request) for connection in during]
            held.sendall(request[-8:])
            answered_held = [_answer(held)]
            exit_code = server.process.wait(timeout=BOUND)
        log = server.log.read_text()

    conversations = [*answered_before, *answered_during, answered_held]
    # each connection: whole answers, the last with `Connection: close`, then an orderly close
    last = Counter((c[-1].status, c[-1].connection, c[-1].then) for c in conversations)
    assert last == {(200, "close", "closed"): CONNECTIONS + 1}, (last, log[-4000:])
    answers = [answer for conversation in conversations for answer in conversation]
    assert {answer.status for answer in answers} == {200}
    assert all(orjson.loads(answer.body)["token"].count(".") == 2 for answer in answers)
    assert exit_code == 0, log
    with sqlite3.connect(home / "var" / "federation.db") as database:
        (audited,) = database.execute("SELECT count(*) FROM issued_tokens").fetchone()
    assert audited == len(answers)
