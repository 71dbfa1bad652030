"""The database goes away under load and comes back: issue-token answers 503 within
bounded time during the outage, recovers by itself, and never returns a token whose
audit row was not committed. The outage is a proxy of the test's own in front of
PostgreSQL; the machine's server is never touched."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_replicas import admin_post
from tests.support import start_server

running = contextlib.contextmanager(start_server)
CLIENTS = 4
PROMISE = 2.0  # seconds a client waits, at most, for the 503 of an outage
OUTAGE = 6.0  # seconds the database stays unreachable
# NOTE: these tests load one key and one run on purpose: no rate limit applies
NO_LIMITS: dict[str, str] = {
    "FEDERATION_RATE_LIMIT_KEY": "off",
    "FEDERATION_RATE_LIMIT_RUN": "off",
    "FEDERATION_RATE_LIMIT_AUTH_FAILURES": "off",
}


@dataclass(frozen=True)
class Answer:
    started: float
    finished: float
    status: int
    body: dict[str, object]


def test_an_outage_answers_503_then_recovers_with_every_token_audited(
    tmp_path: Path, postgres_url: str
) -> None:
    target = urlsplit(postgres_url)
    with TcpProxy((target.hostname or "127.0.0.1", target.port or 5432)) as proxy:
        proxied = postgres_url.replace(target.netloc, f"{target.username}@127.0.0.1:{proxy.port}")
        with running(tmp_path, proxied, NO_LIMITS) as server:
            headers, run_id = agent(server.url, server.admin_key)
            answers: list[Answer] = []
            stop = threading.Event()
            clients = [
                threading.Thread(target=_load, args=(server.url, headers, run_id, stop, answers))
                for _ in range(CLIENTS)
            ]
            for client in clients:
                client.start()
            try:
                time.sleep(1.5)
                cut = time.monotonic()
                proxy.cut()
                time.sleep(OUTAGE)
                restored = time.monotonic()
                proxy.restore()
                deadline = restored + 20
                while time.monotonic() < deadline and not any(
                    a.status == 200 and a.started > restored for a in list(answers)
                ):
                    time.sleep(0.1)
                time.sleep(1.5)
            finally:
                stop.set()
                for client in clients:
                    client.join(30)

    assert {a.status for a in answers} <= {200, 503}, {a.status for a in answers}
    during = [a for a in answers if a.started > cut + 0.2 and a.finished < restored]
    assert during
    assert all(a.status == 503 for a in during)
    for answer in (a for a in answers if a.status == 503):
        assert str(answer.body["type"]).endswith("/resource-unavailable/")
        assert answer.body["retryable"] is True
        assert answer.finished - answer.started <= PROMISE  # bounded
    recovered = min(a.started for a in answers if a.status == 200 and a.started > restored)
    assert recovered - restored < 15
    assert all(a.status == 200 for a in answers if a.started > recovered + 1)
    returned = sum(1 for a in answers if a.status == 200)
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as connection:
        audited = connection.execute("SELECT count(*) FROM issued_tokens").fetchone()
    assert audited is not None
    # never a token without its row; at most one row per client whose answer the cut
    # lost after the commit reached the database
    assert returned <= audited[0] <= returned + CLIENTS


def agent(url: str, admin: str) -> tuple[dict[str, str], str]:
    admin_post(url, admin, "/api/v1/principals", {"type": "user", "uid": "u1", "teams": ["t1"]})
    key = admin_post(
        url, admin, "/api/v1/api-keys", {"name": "k", "principal_uid": "u1", "expires_in": "1d"}
    )["key"]
    run = admin_post(url, admin, "/api/v1/runs", {"principal_uid": "u1", "state": "INPROGRESS"})
    headers = {
        "Authorization": f"Bearer {key}",
        "X-Warp-Ambient-Workload-Token": run["workload_token"],
    }
    return headers, str(run["run_id"])


def _load(
    url: str, headers: dict[str, str], run_id: str, stop: threading.Event, out: list[Answer]
) -> None:
    body = {"run_id": run_id, "audience": "sts.amazonaws.com"}
    with httpx.Client(base_url=url, timeout=PROMISE * 5) as client:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            response = client.post("/api/v1/federate/issue-token", json=body, headers=headers)
            out.append(Answer(started, time.monotonic(), response.status_code, response.json()))
