"""Two `federation serve` processes (two workers each) on one PostgreSQL database,
issuing tokens concurrently: the transparency log they append to stays one log.

Each audit batch appends its entries under the lock of the log's one head row, so
however the batches of the four workers interleave, the log's indexes are 0..n-1 with
no gap and no repeat, and entries = audit rows = tokens returned. Every worker of both
replicas then serves the same checkpoint, and Go's golang.org/x/mod/sumdb (note, tlog)
verifies it, the tiles and entry bundles one replica serves, every checkpoint signed
while the load ran (consistent with the last), and inclusion proofs the other replica
serves.

The replicas share one issuer name, as behind a load balancer: the log's origin, and so
its checkpoints, are the issuer's, whichever replica signs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from federation.keys.kek import new_kek
from federation.store.models import IssuedToken, LogCheckpoint, LogEntryRow
from federation.transparency import LogEntry, open_checkpoint, parse_verifier_key
from tests.integration.test_store_outage import NO_LIMITS
from tests.ledger.support import auditor, b64, checkpoint_of, discovered, download
from tests.support import Agent, LiveServer, World, start_server
from tests.transparency import golang

running = contextlib.contextmanager(start_server)
ISSUER = "https://issuer.example.com"
ORIGIN = "issuer.example.com/log"
ISSUE = "/api/v1/federate/issue-token"
WORKERS = 2  # per replica: four sequencer contenders
CONNECTIONS = 8  # per replica, requests in flight
PHASE = 150  # tokens per phase; two phases: past one full tile of 256 leaves
LOAD_DEADLINE = 120.0  # seconds for a phase's requests
AGREE = 8  # fresh connections per replica that must serve the final checkpoint
INTERMEDIATE = 6  # at most this many of the checkpoints signed under load are checked


@dataclass(frozen=True)
class Answer:
    replica: str
    status: int
    body: dict[str, Any]


@contextlib.contextmanager
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two replicas of one issuer: one database, the database key store, one name."""
    settings = {
        **NO_LIMITS,
        "FEDERATION_KEY_STORE": "database",
        "FEDERATION_KEK": new_kek(),
        "FEDERATION_ISSUER": ISSUER,
    }
    home = tmp_path / "replicas"
    with (
        running(home, postgres_url, settings, workers=WORKERS) as a,
        running(home, postgres_url, settings, workers=WORKERS) as b,
    ):
        yield a, b


async def _issue(targets: list[tuple[LiveServer, Agent]], count: int) -> list[Answer]:
    """``count`` issue-token requests, :data:`CONNECTIONS` in flight at each replica."""
    tickets = iter(range(count))  # NOTE: shared by every connection: next() never yields
    answers: list[Answer] = []

    async def connection(client: httpx.AsyncClient, replica: str, agent: Agent) -> None:
        body = {"run_id": agent.run_id, "audience": "sts.amazonaws.com"}
        for _ in tickets:
            response = await client.post(ISSUE, json=body, headers=agent.headers())
            answers.append(Answer(replica, response.status_code, response.json()))

    limits = httpx.Limits(max_connections=CONNECTIONS)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            (
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits)
                ),
                server.url,
                agent,
            )
            for server, agent in targets
        ]
        load = (connection(*client) for client in clients for _ in range(CONNECTIONS))
        await asyncio.wait_for(asyncio.gather(*load), LOAD_DEADLINE)
    return answers


def issue(targets: list[tuple[LiveServer, Agent]], count: int) -> list[Answer]:
    answers = asyncio.run(_issue(targets, count))
    refused = [answer for answer in answers if answer.status != 200]
    statuses = Counter(answer.status for answer in answers)
    assert not refused, f"answers by status: {dict(statuses)}; first refusals: {refused[:3]}"
    assert len(answers) == count
    return answers


def served_everywhere(servers: list[LiveServer], headers: dict[str, str], size: int) -> str:
    """The checkpoint of ``size`` entries once every worker of every replica serves it
    (asked on fresh connections, which the kernel spreads over a server's workers);
    all of them must serve the same signed note."""
    notes = set()
    for server in servers:
        for _ in range(AGREE):
            with httpx.Client(base_url=server.url, timeout=10) as fresh:
                notes.add(checkpoint_of(fresh, headers, size))
    assert len(notes) == 1, notes
    return notes.pop()


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def test_two_replicas_under_load_keep_one_gap_free_log_that_go_verifies(
    tmp_path: Path, postgres_url: str
) -> None:
    with replicas(tmp_path, postgres_url) as (a, b):
        world = World.live(a)
        headers = auditor(world)
        targets = [(a, world.platform_agent()), (b, World.live(b).platform_agent())]

        first = issue(targets, PHASE)
        middle = served_everywhere([b], headers, PHASE)  # nothing issued meanwhile
        answers = first + issue(targets, PHASE)
        total = 2 * PHASE
        assert {answer.replica for answer in answers} == {a.url, b.url}
        latest = served_everywhere([a, b], headers, total)

        with httpx.Client(base_url=a.url, timeout=10) as at_a:
            log = discovered(at_a)
        with httpx.Client(base_url=b.url, timeout=10) as at_b:
            assert discovered(at_b) == log
        assert log["origin"] == ORIGIN
        verifier = parse_verifier_key(log["verifier_key"])
        final = open_checkpoint(latest, [verifier], origin=ORIGIN)
        assert final.size == total
        assert open_checkpoint(middle, [verifier], origin=ORIGIN).size == PHASE

        # the database: indexes 0..n-1, entries = audit rows = tokens returned
        engine = create_engine(postgres_url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                # each entry with the audit row that names its index
                entries = connection.execute(
                    select(
                        LogEntryRow.idx,
                        IssuedToken.jti,
                        LogEntryRow.token_sha256,
                        LogEntryRow.entry,
                    )
                    .outerjoin(IssuedToken, IssuedToken.log_idx == LogEntryRow.idx)
                    .order_by(LogEntryRow.idx)
                ).all()
                audited = connection.scalars(select(IssuedToken.jti)).all()
                signed = connection.execute(
                    select(LogCheckpoint.size, LogCheckpoint.note)
                    .where(LogCheckpoint.size > 0, LogCheckpoint.size < total)
                    .order_by(LogCheckpoint.size)
                ).all()
        finally:
            engine.dispose()
        assert [row.idx for row in entries] == list(range(total))
        tokens = [answer.body["token"] for answer in answers]
        returned = {answer.body["jti"] for answer in answers}
        assert len(returned) == total
        by_digest = Counter(row.token_sha256 for row in entries)
        assert all(by_digest[sha256_hex(token)] == 1 for token in tokens)
        assert set(by_digest) == {sha256_hex(token) for token in tokens}
        assert sorted(audited) == sorted(returned) == sorted(row.jti for row in entries)
        for row in entries:
            decoded = LogEntry.decode(bytes(row.entry))
            assert (decoded.jti, decoded.token_sha256) == (row.jti, row.token_sha256)

        # Go: the final checkpoint and its tiles as A serves them, the checkpoints
        # signed under load consistent with it, inclusion proofs as B serves them
        earlier = [row.note for row in _spread(signed, INTERMEDIATE)]
        if middle not in earlier:
            earlier.append(middle)
        checkpoints = [*earlier, latest]
        served = tmp_path / "served"
        consistency = []
        with httpx.Client(base_url=a.url, timeout=10) as at_a:
            for note in checkpoints:
                size = open_checkpoint(note, [verifier], origin=ORIGIN).size
                download(at_a, headers, size, served)
        with httpx.Client(base_url=b.url, timeout=10) as at_b:
            for position, note in enumerate(earlier):
                old = open_checkpoint(note, [verifier]).size
                proved = at_b.get(
                    "/api/v1/log/consistency", params={"old": old, "new": total}, headers=headers
                )
                assert proved.status_code == 200, proved.text
                proof = b64(proved.json()["proof"])
                consistency.append({"old": position, "new": len(earlier), "proof": proof})
            inclusion = []
            for answer in (answers[0], answers[-1], *_first_of_each(answers, [a, b])):
                proved = at_b.get(
                    "/api/v1/log/inclusion",
                    params={"token_sha256": sha256_hex(answer.body["token"]), "size": total},
                    headers=headers,
                )
                assert proved.status_code == 200, proved.text
                found = proved.json()
                assert found["checkpoint"] == latest
                entry = LogEntry.decode(base64.b64decode(found["entry"]))
                assert entry.jti == answer.body["jti"]
                inclusion.append(
                    {
                        "checkpoint": len(earlier),
                        "index": found["index"],
                        "proof": b64(found["proof"]),
                    }
                )
        report = golang.verify(
            golang.cached_build(),
            served,
            {
                "verifier_key": log["verifier_key"],
                "key_name": ORIGIN,
                "public_key": verifier.public_key,
                "checkpoints": checkpoints,
                "inclusion": inclusion,
                "consistency": consistency,
            },
        )
    assert report.failures == []
    assert report.checkpoints == len(checkpoints)
    assert report.inclusion == len(inclusion)
    assert report.consistency == len(earlier)


def _spread(rows: Sequence[Any], count: int) -> list[Any]:
    """At most ``count`` of ``rows``, spread evenly from the first to the last."""
    if len(rows) <= count:
        return list(rows)
    step = (len(rows) - 1) / (count - 1)
    return [rows[round(i * step)] for i in range(count)]


def _first_of_each(answers: list[Answer], servers: list[LiveServer]) -> list[Answer]:
    return [next(answer for answer in answers if answer.replica == s.url) for s in servers]
