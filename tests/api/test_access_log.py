"""The access log: one JSON line per request, with who and which run when known, and
never a secret; through the real application and the real formatter."""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.observability.json_logs import JsonFormatter
from federation.observability.logs import ACCESS_LOGGER
from federation.settings import Settings
from federation.store import Store
from tests.api.test_errors import AWS, ISSUE, assert_problem
from tests.api.test_errors_server import ExplodingKeyStore, keyring_on
from tests.support import World, bearer

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
WRONG_KEY = "wk-" + "N0tAReaLKeyButShapedLikeOne0123456789abcdef"[:43]


class Lines:
    """What the access logger wrote, through the JSON formatter the server uses."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def text(self) -> str:
        return self.stream.getvalue()

    def all(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.text().splitlines()]

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@pytest.fixture
def lines() -> Iterator[Lines]:
    captured = Lines()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield captured
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def key_id(client: TestClient, key: str) -> str:
    found: str = client.get("/api/v1/whoami", headers=bearer(key)).json()["key"]["id"]
    return found


def test_an_issued_token_is_one_line_with_every_field(world: World, lines: Lines) -> None:
    agent = world.agent()
    expected_key_id = key_id(world.client, agent.key)
    lines.clear()
    response = world.client.post(
        ISSUE,
        json={"run_id": agent.run_id, "audience": AWS},
        headers=agent.headers(traceparent=TRACEPARENT),
    )
    assert response.status_code == 200, response.text
    [line] = lines.all()
    assert TIME.fullmatch(line.pop("time"))
    latency = line.pop("latency_ms")
    assert isinstance(latency, float)
    assert 0 <= latency < 10_000
    assert line == {
        "method": "POST",
        "path": ISSUE,
        "status": 200,
        "pid": os.getpid(),
        "trace_id": TRACE,
        "principal": agent.uid,
        "key_id": expected_key_id,
        "run_id": agent.run_id,
    }
    assert response.json()["token"] not in lines.text()


def test_each_request_is_one_line(world: World, lines: Lines) -> None:
    agent = world.agent()
    lines.clear()
    world.client.get("/.well-known/jwks.json")  # answered before routing
    world.client.get("/.well-known/openid-configuration")
    world.client.get("/no/such/route")
    world.client.get(f"/api/v1/runs/{agent.run_id}", headers=world.admin)
    world.client.post(ISSUE, content=b"{not json", headers=agent.headers())  # the route's way
    found = lines.all()
    assert [(line["method"], line["path"], line["status"]) for line in found] == [
        ("GET", "/.well-known/jwks.json", 200),
        ("GET", "/.well-known/openid-configuration", 200),
        ("GET", "/no/such/route", 404),
        ("GET", f"/api/v1/runs/{agent.run_id}", 200),
        ("POST", ISSUE, 400),
    ]
    assert all(re.fullmatch(r"[0-9a-f]{32}", line["trace_id"]) for line in found)
    assert "principal" not in found[2]
    assert found[3]["run_id"] == agent.run_id  # from the path
    assert found[3]["principal"] == "federation-admin"


def test_refused_requests_log_no_secret(world: World, lines: Lines) -> None:
    agent = world.agent()
    lines.clear()
    refused = world.client.post(
        ISSUE,
        json={"run_id": agent.run_id, "audience": AWS},
        headers={**bearer(WRONG_KEY), "X-Warp-Ambient-Workload-Token": agent.workload_token},
    )
    assert_problem(refused, 401, "authentication_required", detail=None)
    wrong_token = world.client.post(
        ISSUE,
        json={"run_id": agent.run_id, "audience": AWS},
        headers={**bearer(agent.key), "X-Warp-Ambient-Workload-Token": "wlt-guess"},
    )
    assert wrong_token.status_code == 403
    world.client.get(f"/api/v1/runs?limit=5&cursor={WRONG_KEY}", headers=bearer(WRONG_KEY))
    found = lines.all()
    assert [line["status"] for line in found] == [401, 403, 401]
    assert "principal" not in found[0]
    assert found[1]["principal"] == agent.uid  # the key was good; the run's token was not
    assert found[2]["path"] == "/api/v1/runs"  # never the query
    for secret in (WRONG_KEY, agent.key, agent.workload_token, "wlt-guess", world.admin_key):
        assert secret not in lines.text()


def test_an_internal_error_is_one_line_without_secrets(
    settings: Settings, store: Store, clock: ManualClock, world: World, lines: Lines
) -> None:
    agent = world.agent()
    keyring = keyring_on(ExplodingKeyStore(clock.now()), settings, clock)
    app = create_app(settings, store=store, keyring=keyring, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        lines.clear()
        response = client.post(
            ISSUE, json={"run_id": agent.run_id, "audience": AWS}, headers=agent.headers()
        )
    assert_problem(response, 500, "internal_error", retryable=True, detail=None)
    [line] = lines.all()
    assert (line["status"], line["principal"], line["run_id"]) == (500, agent.uid, agent.run_id)
    for secret in (agent.key, agent.workload_token, "hsm-slot-7-pin-0451"):
        assert secret not in lines.text()


def test_access_log_off(
    settings: Settings, store: Store, keyring: Keyring, clock: ManualClock, lines: Lines
) -> None:
    quiet = settings.model_copy(update={"access_log": False})
    with TestClient(create_app(quiet, store=store, keyring=keyring, clock=clock)) as client:
        assert client.get("/healthz").status_code == 200
    assert lines.text() == ""


def test_the_formatter_writes_plain_records_as_json() -> None:
    record = logging.LogRecord("federation.access", logging.WARNING, "", 0, "a %s", ("b",), None)
    record.created = datetime(2026, 11, 28, 12, 0, 1).timestamp()
    record.msecs = 42
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"] == "a b"
    assert line["level"] == "WARNING"
    assert line["time"].endswith(".042Z")
