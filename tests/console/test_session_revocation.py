"""Console sessions end on the server: a copy of the session cookie is worthless after
signing out, after its API key is deleted or expires, after its lifetime, and after an
admin's "sign out everywhere" (the console's, the API's or the CLI's), on every replica
that shares the database."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from federation.api import create_app
from federation.clock import ManualClock
from federation.console.sessions import SESSION_COOKIE, SESSION_LIFETIME
from federation.keys import Keyring
from federation.registry.principals import bootstrap_admin
from federation.store import Store
from tests.api.test_errors import assert_problem
from tests.cli.helpers import initialized_server, invoke_cli
from tests.conftest import make_settings
from tests.console.pages import csrf_token, post_form, sign_in
from tests.support import LiveServer, World, bearer

REVOKE = "/api/v1/console-sessions/revoke"


def copy_of(client: TestClient) -> TestClient:
    """Another browser holding a copy of ``client``'s session cookie, and nothing else."""
    thief = TestClient(client.app)
    thief.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE], path="/console")
    return thief


def is_signed_in(client: TestClient) -> bool:
    answer = client.get("/console/api-keys", follow_redirects=False)
    assert answer.status_code in (200, 303), answer.text
    return answer.status_code == 200


def assert_refused(client: TestClient) -> None:
    """Every way into the console treats the browser as signed out: a cookie of an
    ended session is told so (and cleared), a browser whose cookie is gone just signs in."""
    had_cookie = SESSION_COOKIE in client.cookies
    page = client.get("/console/api-keys", follow_redirects=False)
    assert page.status_code == 303
    ended = "/console/sign-in?notice=expired"
    assert page.headers["location"] == (ended if had_cookie else "/console/sign-in")
    home = client.get("/console/", follow_redirects=False)
    assert home.status_code == 303
    assert home.headers["location"] == "/console/sign-in"
    form = client.get("/console/sign-in", follow_redirects=False)
    assert form.status_code == 200
    assert 'action="/console/sign-in"' in form.text


def browser_signed_in(world: World, key: str) -> TestClient:
    """A browser of its own on the same application, signed in with ``key``."""
    browser = TestClient(world.client.app)
    sign_in(browser, key)
    return browser


def test_a_cookie_copied_before_sign_out_is_refused_after_it(world: World) -> None:
    sign_in(world.client, world.admin_key)
    thief = copy_of(world.client)
    assert is_signed_in(thief)

    out = post_form(world.client, "/console/api-keys", "/console/sign-out")
    assert out.headers["location"] == "/console/sign-in?notice=signed-out"

    assert_refused(thief)
    # Nor can the copy change anything, with a CSRF token of its own browser.
    world.principal("u1")
    token = csrf_token(thief.get("/console/sign-in").text)
    made = thief.post(
        "/console/api-keys",
        data={"csrf_token": token, "name": "after", "type": "personal"},
        follow_redirects=False,
    )
    assert made.status_code == 303
    assert made.headers["location"] == "/console/sign-in?notice=expired"
    listed = world.client.get("/api/v1/api-keys", headers=world.admin).json()["items"]
    assert "after" not in {key["name"] for key in listed}
    # The key itself is untouched: signing out is not deleting.
    assert world.client.get("/api/v1/whoami", headers=world.admin).status_code == 200


@pytest.mark.parametrize("ending", ["deleted", "expired"])
def test_a_session_ends_with_its_api_key(world: World, clock: ManualClock, ending: str) -> None:
    world.principal("ada")
    key = world.api_key("ada", expires_in="1d")
    sign_in(world.client, key)
    thief = copy_of(world.client)
    assert is_signed_in(thief)

    if ending == "deleted":
        (key_id,) = {
            k["id"]
            for k in world.client.get("/api/v1/api-keys", headers=bearer(key)).json()["items"]
        }
        deleted = world.client.delete(f"/api/v1/api-keys/{key_id}", headers=world.admin)
        assert deleted.status_code == 204
    else:
        clock.advance(timedelta(days=1, seconds=1))

    assert_refused(thief)
    assert_refused(world.client)


def test_a_session_ends_after_its_lifetime_on_the_servers_clock(
    world: World, clock: ManualClock
) -> None:
    sign_in(world.client, world.admin_key)  # the bootstrap key never expires
    clock.advance(timedelta(seconds=SESSION_LIFETIME - 1))
    assert is_signed_in(world.client)
    clock.advance(timedelta(seconds=2))
    assert_refused(world.client)


def test_an_admin_signs_everyone_out_everywhere_through_the_api(world: World) -> None:
    world.principal("ada")
    ada_key = world.api_key("ada")
    sign_in(world.client, world.admin_key)
    ada = browser_signed_in(world, ada_key)
    thieves = [copy_of(world.client), copy_of(ada)]
    assert all(is_signed_in(thief) for thief in thieves)

    ended = world.client.post(REVOKE, headers=world.admin)
    assert ended.status_code == 200, ended.text
    assert ended.json() == {"revoked": 2, "principal_uid": None}

    for browser in (world.client, ada, *thieves):
        assert_refused(browser)
    # Keys keep working, and signing in again starts a new session.
    assert world.client.get("/api/v1/whoami", headers=bearer(ada_key)).status_code == 200
    sign_in(ada, ada_key)
    assert is_signed_in(ada)
    assert world.client.post(REVOKE, headers=world.admin).json()["revoked"] == 1


def test_sign_out_everywhere_for_one_principal(world: World) -> None:
    world.principal("ada")
    world.principal("bob", email="bob@example.com")
    ada = browser_signed_in(world, world.api_key("ada"))
    bob = browser_signed_in(world, world.api_key("bob"))

    ended = world.client.post(REVOKE, json={"principal_uid": "ada"}, headers=world.admin)
    assert ended.status_code == 200, ended.text
    assert ended.json() == {"revoked": 1, "principal_uid": "ada"}
    assert_refused(ada)
    assert is_signed_in(bob)


def test_sign_out_everywhere_refusals_are_problems(world: World) -> None:
    world.principal("ada")
    ada_key = world.api_key("ada", scopes=("federate", "runs:write"))
    ada = browser_signed_in(world, ada_key)

    assert_problem(world.client.post(REVOKE), 401, "authentication_required", detail=None)
    refused = world.client.post(REVOKE, headers=bearer(ada_key))
    assert_problem(refused, 403, "not_authorized")
    unknown = world.client.post(REVOKE, json={"principal_uid": "nobody"}, headers=world.admin)
    assert_problem(unknown, 404, "resource_not_found")
    bodies: tuple[object, ...] = ({"principal_uid": "../x"}, {"everyone": True}, [])
    for body in bodies:
        bad = world.client.post(REVOKE, json=body, headers=world.admin)
        assert_problem(bad, 400, "invalid_request")
    assert is_signed_in(ada)


def test_an_admin_signs_out_everywhere_from_the_console(world: World) -> None:
    world.principal("ada")
    ada = browser_signed_in(world, world.api_key("ada"))
    assert "Sign out everywhere" not in ada.get("/console/api-keys").text
    # A key without admin is refused by the API, and nothing ends.
    refused = post_form(ada, "/console/api-keys", "/console/sign-out-everywhere")
    assert refused.status_code == 403
    assert is_signed_in(ada)

    sign_in(world.client, world.admin_key)
    thief = copy_of(world.client)
    assert 'href="/console/sign-out-everywhere"' in world.client.get("/console/api-keys").text
    confirm = world.client.get("/console/sign-out-everywhere")
    assert confirm.status_code == 200
    assert "yours too" in confirm.text
    done = world.client.post(
        "/console/sign-out-everywhere",
        data={"csrf_token": csrf_token(confirm.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/console/sign-in?notice=signed-out-everywhere"
    for browser in (world.client, thief, ada):
        assert_refused(browser)


def test_sign_out_everywhere_needs_the_csrf_token(world: World) -> None:
    world.principal("ada")
    ada = browser_signed_in(world, world.api_key("ada"))
    sign_in(world.client, world.admin_key)
    forged = world.client.post("/console/sign-out-everywhere", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert is_signed_in(world.client)
    assert is_signed_in(ada)


def test_a_session_the_database_cannot_vouch_for_is_no_session(world: World, store: Store) -> None:
    sign_in(world.client, world.admin_key)
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE console_sessions"))
    page = world.client.get("/console/api-keys", follow_redirects=False)
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "Traceback" not in page.text
    home = world.client.get("/console/", follow_redirects=False)
    assert home.headers["location"] == "/console/sign-in"


# ---- replicas: one database, two applications -----------------------------------------


@pytest.fixture
def replicas(
    database_url: str, tmp_path: Path, keyring: Keyring, clock: ManualClock
) -> Iterator[tuple[TestClient, TestClient, str]]:
    """Two applications on one database (SQLite and PostgreSQL) sharing the console
    secret, as replicas behind a load balancer are; and the admin key."""
    stores = [Store.from_url(database_url) for _ in range(2)]
    try:
        stores[0].migrate()
        with stores[0].session() as session:
            created = bootstrap_admin(session, clock.now())
        assert created is not None
        settings = make_settings(tmp_path / "replicas", database_url)
        secret = secrets.token_bytes(32)
        first, second = (
            create_app(settings, store=store, keyring=keyring, clock=clock, console_secret=secret)
            for store in stores
        )
        with TestClient(first) as one, TestClient(second) as other:
            yield one, other, created.raw
    finally:
        for store in stores:
            store.dispose()


def test_signing_out_on_one_replica_ends_the_session_on_the_other(
    replicas: tuple[TestClient, TestClient, str],
) -> None:
    one, other, admin_key = replicas
    sign_in(one, admin_key)
    cookie = one.cookies[SESSION_COOKIE]
    other.cookies.set(SESSION_COOKIE, cookie, path="/console")
    assert is_signed_in(other)

    post_form(one, "/console/api-keys", "/console/sign-out")
    assert_refused(other)

    # And "sign out everywhere" on one replica reaches sessions begun on the other.
    other.cookies.clear()
    sign_in(other, admin_key)
    assert is_signed_in(other)
    ended = one.post(REVOKE, headers=bearer(admin_key))
    assert ended.json()["revoked"] == 1
    assert_refused(other)


# ---- the CLI ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with initialized_server(tmp_path_factory.mktemp("issuer")) as server:
        yield server


def live_sign_in(server: LiveServer, key: str) -> httpx.Client:
    browser = httpx.Client(base_url=server.url, timeout=10)
    form = browser.get("/console/sign-in")
    answer = browser.post(
        "/console/sign-in", data={"csrf_token": csrf_token(form.text), "api_key": key}
    )
    assert answer.status_code == 303, answer.text
    return browser


def live_signed_in(browser: httpx.Client) -> bool:
    return browser.get("/console/api-keys").status_code == 200


@pytest.mark.integration
def test_the_cli_signs_everyone_out_everywhere(server: LiveServer) -> None:
    browsers = [live_sign_in(server, server.admin_key) for _ in range(2)]
    try:
        assert all(live_signed_in(browser) for browser in browsers)
        result = invoke_cli(server, "console-sessions", "revoke")
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == "ended 2 console session(s)"
        assert not any(live_signed_in(browser) for browser in browsers)

        as_json = invoke_cli(server, "console-sessions", "revoke", "--output-format", "json")
        assert as_json.returncode == 0, as_json.stderr
        assert json.loads(as_json.stdout) == {"revoked": 0, "principal_uid": None}
    finally:
        for browser in browsers:
            browser.close()


@pytest.mark.integration
def test_the_cli_refuses_an_unknown_principal_in_one_line(server: LiveServer) -> None:
    result = invoke_cli(server, "console-sessions", "revoke", "--principal", "nobody")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("federation: ")
    assert "principal nobody not found" in lines[0]
