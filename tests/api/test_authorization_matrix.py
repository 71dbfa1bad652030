"""The authorization matrix: every endpoint by every kind of caller gets exactly the answer
the docs document (the table of docs/reference/http-api.md, docs/concepts.md and
docs/reference/errors.md).

The table below is written from those pages, not from the code. It must name every route
of the application's OpenAPI document but the public ones, so a new endpoint fails
``test_the_matrix_covers_every_route`` until someone writes its row.

The resources acted on belong to ``u1``; every path names one that exists (u1's run,
a key u1's own key created, the active ES256 signing key), so a 404 is never a missing
fixture. The callers:

- ``none``: no ``Authorization`` header;
- ``expired``: u1's personal ``federate`` key, one day past its expiry (ManualClock);
- ``deleted``: u1's personal ``federate`` key, deleted by the admin;
- ``federate``: u1's personal key with only ``federate``;
- ``runs_write``: an orchestrator's personal key with only ``runs:write`` (acting on
  u1's runs, which it may: only its own principal's are out of bounds);
- ``admin``: the bootstrap admin key;
- ``other``: u2's personal key with ``federate`` and ``runs:write``, on u1's resources.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.registry.principals import bootstrap_admin
from federation.server.runtime import open_keyring
from federation.settings import Settings
from federation.store import Store
from tests.api.test_errors import AWS, GCP, assert_problem
from tests.conftest import START, make_settings
from tests.support import World, bearer, free_port

CALLERS: Final = ("none", "expired", "deleted", "federate", "runs_write", "admin", "other")
OK: Final = 0  # the row's documented success status
PASSES: Final = -1  # gets past authentication and authorization (the broker: see below)
PUBLIC: Final = {
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
}
GRAPHQL_QUERY: Final = (
    "mutation IssueTaskIdentityToken($input: IssueTaskIdentityTokenInput!) {"
    " issueTaskIdentityToken(requestContext: {osContext: {}, clientContext: {}}, input: $input)"
    " { __typename ... on IssueTaskIdentityTokenOutput { token }"
    " ... on UserFacingError { error { __typename ... on PlatformError { info { code } } } } } }"
)


@dataclass(frozen=True)
class Setup:
    """What the cells act on, made through the real API before each request."""

    run_id: str
    workload_token: str
    key_id: str  # a key u1's ``federate`` key created for itself
    kid: str  # the active ES256 signing key
    keys: dict[str, str]


Body = Callable[[Setup], dict[str, Any] | None]


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    ok: int
    cells: dict[str, int]
    body: Body = field(default=lambda s: None)
    in_openapi: bool = True

    def url(self, setup: Setup) -> str:
        return (
            self.path.replace("{run_id}", setup.run_id)
            .replace("{key_id}", setup.key_id)
            .replace("{kid}", setup.kid)
            .replace("{uid}", "u1")
            .replace("{path}", "0/x999/000")
        )


def _unauthenticated(**cells: int) -> dict[str, int]:
    """Every row: no key, an expired key and a deleted key answer 401 (Concepts, Errors)."""
    return {"none": 401, "expired": 401, "deleted": 401, **cells}


# federate (or admin) scope, then the run's own principal, no admin exception (rule 3).
TOKEN_RULES = _unauthenticated(federate=OK, runs_write=403, admin=403, other=403)
ADMIN_ONLY = _unauthenticated(federate=403, runs_write=403, admin=OK, other=403)
RUNS_WRITE = _unauthenticated(federate=403, runs_write=OK, admin=OK, other=OK)


def _issue_body(setup: Setup) -> dict[str, Any]:
    return {"run_id": setup.run_id, "audience": AWS}


def _graphql_body(setup: Setup) -> dict[str, Any]:
    return {"query": GRAPHQL_QUERY, "variables": {"input": {"audience": AWS}}}


MATRIX: Final = (
    Row("POST", "/api/v1/federate/issue-token", 200, TOKEN_RULES, _issue_body),
    Row("POST", "/api/v1/federate/preview-token", 200, TOKEN_RULES, _issue_body),
    # The broker's upstreams are closed loopback ports: an allowed caller gets past the
    # checks and then fails upstream, which is all this matrix asks of it.
    Row(
        "POST",
        "/api/v1/federate/aws/credentials",
        PASSES,
        TOKEN_RULES,
        lambda s: {"run_id": s.run_id, "role_arn": "arn:aws:iam::123456789012:role/deploy"},
    ),
    Row(
        "POST",
        "/api/v1/federate/gcp/access-token",
        PASSES,
        TOKEN_RULES,
        lambda s: {"run_id": s.run_id, "audience": GCP},
    ),
    # A refused issuance is HTTP 200 with a PlatformError carrying the code (GraphQL).
    Row("POST", "/graphql/v2", 200, TOKEN_RULES, _graphql_body),
    Row(
        "GET",
        "/api/v1/whoami",
        200,
        _unauthenticated(federate=OK, runs_write=OK, admin=OK, other=OK),
    ),
    Row(
        "POST",
        "/api/v1/principals",
        201,
        ADMIN_ONLY,
        lambda s: {"type": "user", "uid": "u9", "teams": ["t1"]},
    ),
    Row("GET", "/api/v1/principals", 200, ADMIN_ONLY),
    Row("GET", "/api/v1/principals/{uid}", 200, ADMIN_ONLY),
    # "admin, or own personal keys": a user creates personal keys only for themselves.
    Row(
        "POST",
        "/api/v1/api-keys",
        201,
        _unauthenticated(federate=OK, runs_write=403, admin=OK, other=403),
        lambda s: {
            "name": "mine",
            "type": "personal",
            "principal_uid": "u1",
            "scopes": ["federate"],
            "expires_in": "1d",
        },
    ),
    Row(
        "GET",
        "/api/v1/api-keys",
        200,
        _unauthenticated(federate=OK, runs_write=OK, admin=OK, other=OK),
    ),
    # A key deletes the keys it created; "someone else's key id answers 404".
    Row(
        "DELETE",
        "/api/v1/api-keys/{key_id}",
        204,
        _unauthenticated(federate=OK, runs_write=404, admin=OK, other=404),
    ),
    Row(
        "POST",
        "/api/v1/runs",
        201,
        RUNS_WRITE,
        lambda s: {"principal_uid": "u1", "state": "INPROGRESS"},
    ),
    Row("GET", "/api/v1/runs", 200, RUNS_WRITE),
    Row("GET", "/api/v1/runs/{run_id}", 200, RUNS_WRITE),
    Row("PATCH", "/api/v1/runs/{run_id}", 200, RUNS_WRITE, lambda s: {"state": "SUCCEEDED"}),
    # An operator's dry run for any run: runs:write, no workload token, no principal rule.
    Row(
        "POST",
        "/api/v1/runs/{run_id}/preview-token",
        200,
        RUNS_WRITE,
        lambda s: {"audience": AWS},
    ),
    Row("GET", "/api/v1/keys", 200, ADMIN_ONLY),
    Row("POST", "/api/v1/keys/rotate", 201, ADMIN_ONLY),
    Row("POST", "/api/v1/keys/{kid}/retire", 200, ADMIN_ONLY),
    Row("POST", "/api/v1/keys/{kid}/revoke", 200, ADMIN_ONLY),
    Row("GET", "/api/v1/tokens", 200, ADMIN_ONLY),
    Row("POST", "/api/v1/console-sessions/revoke", 200, ADMIN_ONLY),
    # The transparency log: the audit scope or admin (no caller here holds audit). The
    # tile is beyond any tree: an allowed caller gets past the checks to its 404.
    Row("GET", "/log/checkpoint", 200, ADMIN_ONLY),
    Row("GET", "/log/tile/{path}", 404, ADMIN_ONLY),
    Row("GET", "/api/v1/log/inclusion", 400, ADMIN_ONLY),
    Row("GET", "/api/v1/log/consistency", 400, ADMIN_ONLY),
    # Not in the OpenAPI document; admin with the default FEDERATION_METRICS.
    Row("GET", "/metrics", 200, ADMIN_ONLY, in_openapi=False),
)

# Cells whose actual answer differs from the documented one: findings, kept visible.
FINDINGS: Final[dict[tuple[str, str], str]] = {}


def _cases() -> list[Any]:
    cases = []
    for row in MATRIX:
        for caller in CALLERS:
            name = f"{row.method} {row.path} as {caller}"
            reason = FINDINGS.get((f"{row.method} {row.path}", caller))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(row, caller, id=name, marks=marks))
    return cases


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The broker's upstreams on closed loopback ports: nothing leaves the machine."""
    closed = f"http://127.0.0.1:{free_port()}"
    return make_settings(
        tmp_path,
        aws_sts_endpoint_url=closed,
        gcp_sts_url=f"{closed}/v1/token",
        gcp_iam_url=closed,
    )


def _setup(world: World) -> Setup:
    world.principal("u1")
    world.principal("u2", email="bob@example.com")
    world.principal("orch", email="orchestrator@example.com")
    run = world.run("u1")
    federate = world.api_key("u1")
    child = world.client.post(
        "/api/v1/api-keys",
        json={"name": "child", "type": "personal", "principal_uid": "u1", "expires_in": "1d"},
        headers=bearer(federate),
    )
    assert child.status_code == 201, child.text
    deleted = world.client.post(
        "/api/v1/api-keys",
        json={"name": "deleted", "type": "personal", "principal_uid": "u1"},
        headers=world.admin,
    )
    assert deleted.status_code == 201, deleted.text
    gone = world.client.delete(f"/api/v1/api-keys/{deleted.json()['id']}", headers=world.admin)
    assert gone.status_code == 204, gone.text
    signing = world.client.get("/api/v1/keys", headers=world.admin)
    assert signing.status_code == 200, signing.text
    kid = next(
        k["kid"] for k in signing.json()["items"] if k["alg"] == "ES256" and k["state"] == "active"
    )
    keys = {
        "expired": world.api_key("u1", expires_in="1d", name="expiring"),
        "deleted": deleted.json()["key"],
        "federate": federate,
        "runs_write": world.api_key("orch", scopes=("runs:write",)),
        "admin": world.admin_key,
        "other": world.api_key("u2", scopes=("federate", "runs:write")),
    }
    return Setup(run["run_id"], run["workload_token"], child.json()["id"], kid, keys)


@dataclass(frozen=True)
class Prepared:
    database: Path  # the store after the admin's bootstrap and ``_setup``
    admin_key: str
    setup: Setup


@pytest.fixture(scope="session")
def prepared(templates: Path, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """``_setup`` through the real API once per worker, at the clock's start; each cell
    gets a copy of the resulting database (its request may change it), as the suite's
    ``store`` is a copy of the migrated template."""
    base = tmp_path_factory.mktemp("matrix")
    settings = make_settings(base)
    (base / "var").mkdir(mode=0o700)
    shutil.copy2(templates / "var" / "federation.db", base / "var" / "federation.db")
    shutil.copytree(templates / "keys", settings.keys_dir)
    store = Store.from_url(settings.database_url)
    try:
        clock = ManualClock(START)
        keyring = open_keyring(settings, clock)
        keyring.load()
        with store.session() as session:
            created = bootstrap_admin(session, clock.now())
        assert created is not None
        app = create_app(settings, store=store, keyring=keyring, clock=clock)
        with TestClient(app, raise_server_exceptions=False) as client:
            setup = _setup(World(client, created.raw))
    finally:
        store.dispose()
    return Prepared(base / "var" / "federation.db", created.raw, setup)


@pytest.fixture
def store(settings: Settings, prepared: Prepared, tmp_path: Path) -> Iterator[Store]:
    """This module's store: a copy of the prepared one (principals, keys, a run)."""
    (tmp_path / "var").mkdir(mode=0o700, exist_ok=True)
    shutil.copy2(prepared.database, tmp_path / "var" / "federation.db")
    store = Store.from_url(settings.database_url)
    yield store
    store.dispose()


@pytest.fixture
def admin_key(prepared: Prepared) -> str:
    return prepared.admin_key


def _call(world: World, row: Row, setup: Setup, caller: str) -> httpx2.Response:
    headers = {"X-Warp-Ambient-Workload-Token": setup.workload_token}
    if row.path == "/graphql/v2":
        headers["X-Warp-Cloud-Agent-ID"] = setup.run_id
    if caller != "none":
        headers.update(bearer(setup.keys[caller]))
    body = row.body(setup)
    return world.client.request(row.method, row.url(setup), json=body, headers=headers)


@pytest.mark.parametrize(("row", "caller"), _cases())
def test_matrix_cell(
    world: World, prepared: Prepared, clock: ManualClock, row: Row, caller: str
) -> None:
    setup = prepared.setup
    if caller == "expired":
        clock.advance(timedelta(days=1, seconds=1))
    response = _call(world, row, setup, caller)
    expected = row.cells[caller]
    if expected == 401:
        assert_problem(response, 401, "authentication_required", detail=None)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    elif row.path == "/graphql/v2":
        assert response.status_code == 200, response.text
        answer = response.json()
        assert "errors" not in answer, answer
        result = answer["data"]["issueTaskIdentityToken"]
        if expected == OK:
            assert result["__typename"] == "IssueTaskIdentityTokenOutput", result
        else:
            assert result["__typename"] == "UserFacingError", result
            assert result["error"]["__typename"] == "PlatformError", result
            assert result["error"]["info"]["code"] == "NOT_AUTHORIZED", result
    elif expected == 403:
        assert_problem(response, 403, "not_authorized")
    elif expected == 404:
        assert_problem(response, 404, "resource_not_found")
    elif row.ok == PASSES:
        assert response.status_code not in {401, 403, 404}, response.text
    else:
        assert response.status_code == row.ok, response.text


def test_the_matrix_covers_every_route(app: FastAPI) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    rows = [(row.method, row.path) for row in MATRIX if row.in_openapi]
    assert len(rows) == len(set(rows))
    assert set(rows) == routes - PUBLIC
    assert all(set(row.cells) == set(CALLERS) for row in MATRIX)
