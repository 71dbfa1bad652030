"""A bounded load: 64 connections for 10 s on a real server process; every answer is a
token, and the audit log holds exactly one row per token answered."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import httpx

from tests.integration.test_store_outage import NO_LIMITS, agent
from tests.support import start_server

running = contextlib.contextmanager(start_server)
CONNECTIONS = 64
SECONDS = 10.0


def test_load_answers_every_request_and_audits_every_token(tmp_path: Path) -> None:
    database = tmp_path / "federation.db"
    with running(tmp_path, f"sqlite:///{database}", NO_LIMITS) as server:
        headers, run_id = agent(server.url, server.admin_key)
        statuses = asyncio.run(_load(server.url, headers, run_id))
    assert len(statuses) > CONNECTIONS
    assert set(statuses) == {200}, {status: statuses.count(status) for status in set(statuses)}
    with sqlite3.connect(database) as connection:
        (audited,) = connection.execute("SELECT count(*) FROM issued_tokens").fetchone()
    assert audited == len(statuses)


async def _load(url: str, headers: dict[str, str], run_id: str) -> list[int]:
    body = {"run_id": run_id, "audience": "sts.amazonaws.com"}
    statuses: list[int] = []
    deadline = time.monotonic() + SECONDS
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one_connection() -> None:
            while time.monotonic() < deadline:  # NOTE: the request in flight completes
                response = await client.post(
                    "/api/v1/federate/issue-token", json=body, headers=headers
                )
                statuses.append(response.status_code)

        await asyncio.gather(*(one_connection() for _ in range(CONNECTIONS)))
    return statuses
