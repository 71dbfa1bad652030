"""The transparency log as an issuer serves it, checked by code we did not write.

Tokens issued through the API land in the log; Go's golang.org/x/mod/sumdb/note opens the
served checkpoint with the verifier key the discovery document names, sumdb/tlog
authenticates the served tiles and entry bundles against its root, and the served
inclusion and consistency proofs pass tlog.CheckRecord and tlog.CheckTree."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from federation.api import create_app
from federation.clock import SystemClock
from federation.server.runtime import initialize, open_keyring
from federation.settings import Settings
from federation.store import Store
from federation.store.models import IssuedToken, LogEntryRow
from federation.transparency import (
    Checkpoint,
    LogEntry,
    open_checkpoint,
    parse_verifier_key,
    token_sha256,
    verify_consistency,
)
from tests.conftest import make_settings
from tests.ledger.support import auditor, b64, checkpoint_of, discovered, download
from tests.support import World, bearer
from tests.transparency import golang

TOKENS = 260  # past one full tile of 256 leaves


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, rate_limit_run="off", rate_limit_key="off")


def test_issued_tokens_are_in_a_log_go_verifies(
    client: TestClient, world: World, store: Store, tmp_path: Path, go_verifier: Path
) -> None:
    headers = auditor(world)
    agent = world.agent()
    tokens = []
    first = None
    for i in range(TOKENS):
        response = world.issue(agent)
        assert response.status_code == 200, response.text
        tokens.append(response.json())
        if i == 99:
            first = checkpoint_of(client, headers, 100)
    assert first is not None
    log = discovered(client)
    assert log["url"] == "http://127.0.0.1:8080/log/"
    assert log["origin"] == "127.0.0.1:8080/log"
    verifier = parse_verifier_key(log["verifier_key"])

    latest = checkpoint_of(client, headers, TOKENS)
    response = client.get("/log/checkpoint", headers=headers)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    checkpoint = open_checkpoint(latest, [verifier], origin=log["origin"])
    assert checkpoint.size == TOKENS
    old = open_checkpoint(first, [verifier])
    assert 100 <= old.size < TOKENS

    inclusions = []
    for position in (0, 1, 99, 255, 256, TOKENS - 1):
        issued = tokens[position]
        proved = client.get(
            "/api/v1/log/inclusion",
            params={"token_sha256": token_sha256(issued["token"])},
            headers=headers,
        ).json()
        assert proved["index"] == position
        assert proved["tree_size"] == TOKENS
        entry = LogEntry.decode(base64.b64decode(proved["entry"]))
        assert entry.jti == issued["jti"]
        assert entry.sub == issued["subject"]
        assert entry.token_sha256 == hashlib.sha256(issued["token"].encode()).hexdigest()
        by_jti = client.get(
            "/api/v1/log/inclusion", params={"jti": issued["jti"]}, headers=headers
        ).json()
        assert by_jti["proof"] == proved["proof"]
        inclusions.append({"checkpoint": 1, "index": position, "proof": b64(proved["proof"])})
    consistency = client.get(
        "/api/v1/log/consistency", params={"old": old.size}, headers=headers
    ).json()
    assert consistency["new_size"] == TOKENS
    verify_consistency(old.size, TOKENS, old.root, checkpoint.root, b64(consistency["proof"]))

    served = tmp_path / "served"
    download(client, headers, old.size, served)
    download(client, headers, TOKENS, served)
    report = golang.verify(
        go_verifier,
        served,
        {
            "verifier_key": log["verifier_key"],
            "key_name": log["origin"],
            "public_key": verifier.public_key,
            "checkpoints": [first, latest],
            "inclusion": inclusions,
            "consistency": [{"old": 0, "new": 1, "proof": b64(consistency["proof"])}],
        },
    )
    assert report.failures == []
    assert report.entries >= TOKENS
    assert report.inclusion == len(inclusions)
    assert report.consistency == 1

    with store.session() as session:
        rows = session.scalar(select(func.count()).select_from(IssuedToken))
        entries = session.scalars(select(LogEntryRow.idx).order_by(LogEntryRow.idx)).all()
    assert rows == TOKENS
    assert list(entries) == list(range(TOKENS))


def test_reading_the_log_takes_the_audit_or_admin_scope(client: TestClient, world: World) -> None:
    agent = world.agent()
    assert world.issue(agent).status_code == 200
    checkpoint_of(client, world.admin, 1)
    paths = [
        "/log/checkpoint",
        "/log/tile/0/000.p/1",
        "/log/tile/entries/000.p/1",
        "/api/v1/log/consistency?old=0",
    ]
    for path in paths:
        assert client.get(path).status_code == 401, path
        refused = client.get(path, headers=bearer(agent.key))
        assert refused.status_code == 403, path
        assert refused.headers["content-type"] == "application/problem+json"
        assert "'audit' or 'admin'" in refused.json()["detail"]
        assert client.get(path, headers=world.admin).status_code == 200, path
    headers = auditor(world)
    for path in paths:
        assert client.get(path, headers=headers).status_code == 200, path
    full = client.get("/log/tile/0/000.p/1", headers=headers)
    assert full.headers["cache-control"] == "private, max-age=60"


def test_bad_log_requests_are_clear_problems(client: TestClient, world: World) -> None:
    headers = auditor(world)
    agent = world.agent()
    assert world.issue(agent).status_code == 200
    checkpoint_of(client, headers, 1)
    cases = {
        "/log/tile/0/001": 404,  # beyond the checkpoint
        "/log/tile/0/000.p/2": 404,
        "/log/tile/x/000": 400,
        "/log/tile/0/0000": 400,
        "/api/v1/log/inclusion?jti=nope": 404,
        "/api/v1/log/inclusion": 400,
        "/api/v1/log/inclusion?token_sha256=XYZ": 400,
        "/api/v1/log/consistency?old=5": 400,
        "/api/v1/log/consistency?old=-1": 400,
    }
    for path, status in cases.items():
        response = client.get(path, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json", path


def test_a_public_log_needs_no_key(tmp_path: Path, world: World, client: TestClient) -> None:
    del world, client

    settings = make_settings(tmp_path / "public", log_public=True)
    initialize(settings, SystemClock())
    store = Store.from_url(settings.database_url)
    try:
        keyring = open_keyring(settings, SystemClock(), store)
        keyring.load()
        with TestClient(create_app(settings, store=store, keyring=keyring)) as public:
            response = public.get("/log/checkpoint")
            assert response.status_code == 200
            assert response.headers["cache-control"] == "public, max-age=1"
            checkpoint = Checkpoint.parse(response.text.split("\n\n")[0] + "\n")
            assert checkpoint.size == 0
    finally:
        store.dispose()


def test_with_the_log_off_nothing_is_logged(tmp_path: Path) -> None:

    settings = make_settings(tmp_path / "off", transparency_log=False)
    report = initialize(settings, SystemClock())
    store = Store.from_url(settings.database_url)
    try:
        keyring = open_keyring(settings, SystemClock(), store)
        keyring.load()
        with TestClient(create_app(settings, store=store, keyring=keyring)) as off:
            world = World(off, report.admin_key or "")
            agent = world.agent()
            assert world.issue(agent).status_code == 200
            document: dict[str, Any] = off.get("/.well-known/openid-configuration").json()
            assert "transparency_log" not in document
            assert off.get("/log/checkpoint", headers=world.admin).status_code == 404
        with store.session() as session:
            assert session.scalar(select(func.count()).select_from(LogEntryRow)) == 0
            assert session.scalar(select(func.count()).select_from(IssuedToken)) == 1
    finally:
        store.dispose()


def test_an_issuer_with_a_path_serves_its_log_under_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "tenant", issuer="https://issuer.example.com/tenant-a")
    report = initialize(settings, SystemClock())
    store = Store.from_url(settings.database_url)
    try:
        keyring = open_keyring(settings, SystemClock(), store)
        keyring.load()
        with TestClient(create_app(settings, store=store, keyring=keyring)) as tenant:
            log = discovered(tenant)
            assert log["url"] == "https://issuer.example.com/tenant-a/log/"
            assert log["origin"] == "issuer.example.com/tenant-a/log"
            headers = bearer(report.admin_key or "")
            for prefix in ("/tenant-a", ""):
                response = tenant.get(f"{prefix}/log/checkpoint", headers=headers)
                assert response.status_code == 200, prefix
                opened = open_checkpoint(response.text, [parse_verifier_key(log["verifier_key"])])
                assert opened.origin == log["origin"]
    finally:
        store.dispose()
