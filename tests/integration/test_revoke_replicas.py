"""Two `federation serve` processes on one database: once a revoke (or retire) at one
returns, the other hands out no token signed by that key, and its JWKS drops a revoked
key within a second (docs/keys.md).

The other replica is kept busy issuing tokens throughout, so that it signs with the key
right up to the change: its keyring is not read again before its next token, and the
audit commit is what refuses the key. Each token is verified with PyJWT against that
replica's JWKS. Two set-ups: the ``database`` key store on PostgreSQL, and the ``file``
key store (one keys directory) on SQLite.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from federation.keys.kek import new_kek
from tests.integration.test_store_outage import NO_LIMITS
from tests.support import Agent, LiveServer, World, start_server

running = contextlib.contextmanager(start_server)
ISSUE = "/api/v1/federate/issue-token"
AUDIENCE = "sts.amazonaws.com"
JWKS_WITHIN = 1.0  # seconds after the revoke returned (the issue's bound)
AFTER = 1.5  # seconds of tokens asked for after the change returned


@dataclass(frozen=True)
class Answer:
    started: float  # time.monotonic() when the request was sent
    status: int
    token: str | None


class Asking:
    """Issues tokens at one replica, one after another, until stopped (bounded in time)."""

    def __init__(self, replica: LiveServer, agent: Agent, *, limit: float = 60) -> None:
        self.replica, self.agent, self.limit = replica, agent, limit
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Asking:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        body = {"run_id": self.agent.run_id, "audience": AUDIENCE}
        ends = time.monotonic() + self.limit
        with httpx.Client(base_url=self.replica.url, timeout=10) as client:
            while not self._stop.is_set() and time.monotonic() < ends:
                started = time.monotonic()
                answer = client.post(ISSUE, json=body, headers=self.agent.headers())
                token = answer.json().get("token") if answer.status_code == 200 else None
                self.answers.append(Answer(started, answer.status_code, token))

    def since(self, moment: float) -> list[Answer]:
        return [answer for answer in list(self.answers) if answer.started >= moment]

    def wait_for(self, count: int, after: float, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while len(self.since(after)) < count:
            assert time.monotonic() < deadline, "the replica answered too few requests"
            assert self._thread.is_alive()
            time.sleep(0.01)


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def published(replica: LiveServer) -> set[str]:
    answer = httpx.get(f"{replica.url}/.well-known/jwks.json", timeout=10)
    assert answer.status_code == 200, answer.text
    return {key["kid"] for key in answer.json()["keys"]}


def verify(token: str, jwks: jwt.PyJWKSet) -> dict[str, Any]:
    """As a cloud would: the key by kid from the replica's JWKS, then the signature."""
    key = next(key for key in jwks.keys if key.key_id == kid_of(token))
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["ES256"], audience=AUDIENCE, leeway=10
    )
    return claims


def change(replica: LiveServer, kid: str, action: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{replica.url}/api/v1/keys/{kid}/{action}",
        headers={"Authorization": f"Bearer {replica.admin_key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture(params=["database-store-postgres", "file-store-sqlite"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer, ...]]:
    home = tmp_path / "replicas"
    if request.param.startswith("database"):
        database_url = str(request.getfixturevalue("postgres_url"))
        settings = {**NO_LIMITS, "FEDERATION_KEY_STORE": "database", "FEDERATION_KEK": new_kek()}
    else:
        database_url = f"sqlite:///{home}/var/federation.db"
        settings = {**NO_LIMITS}  # both replicas read and write home/keys
    with running(home, database_url, settings) as a, running(home, database_url, settings) as b:
        yield a, b


def _after_change(
    asking: Asking, b: LiveServer, stopped: str, returned: float, *, revoked: bool
) -> list[str]:
    """Every token B issued for requests sent after the change returned: none signed by
    ``stopped``, each verifying at B. When ``revoked``, B's JWKS drops the key within
    a second. Returns their kids."""
    # NOTE: a JWKS request sent once the bound has passed must not list a revoked key,
    # however long the busy replica then takes to answer it
    while time.monotonic() < returned + JWKS_WITHIN:
        time.sleep(0.02)
    assert (stopped in published(b)) is not revoked  # a retired key's tokens still verify
    asking.wait_for(10, after=returned, within=30)
    while time.monotonic() < returned + AFTER:
        time.sleep(0.05)
    later = asking.since(returned)
    assert later
    assert all(answer.status == 200 for answer in later), later
    kids = [kid_of(str(answer.token)) for answer in later]
    assert stopped not in kids, f"{kids.count(stopped)} of {len(kids)} tokens by {stopped}"
    jwks = jwt.PyJWKSet.from_dict(httpx.get(f"{b.url}/.well-known/jwks.json", timeout=10).json())
    for answer in later:
        verify(str(answer.token), jwks)
    return kids


def test_a_key_stopped_at_one_replica_signs_nothing_more_at_the_other(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    a, b = replicas
    agent = World.live(a).platform_agent()
    with Asking(b, agent) as asking:
        asking.wait_for(20, after=0)
        assert all(answer.status == 200 for answer in asking.answers), asking.answers
        signing = kid_of(str(asking.answers[-1].token))

        # revoke: B's next tokens carry another kid, and its JWKS drops the key
        revoked = change(a, signing, "revoke")
        returned = time.monotonic()
        assert revoked["key"]["state"] == "removed"
        replacement = revoked["replacement"]["kid"]
        kids = _after_change(asking, b, signing, returned, revoked=True)
        assert set(kids) == {replacement}

        # retire the replacement: the same at B, the key published still
        retired = change(a, replacement, "retire")
        returned = time.monotonic()
        assert retired["key"]["state"] == "retired"
        kids = _after_change(asking, b, replacement, returned, revoked=False)
        assert set(kids) == {retired["replacement"]["kid"]}
