"""The console's security: headers, the session cookie, CSRF, and the same authorization
as the API (a personal key never reaches another principal's keys)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from federation.api import create_app
from federation.clock import ManualClock
from federation.console.headers import CONTENT_SECURITY_POLICY
from federation.console.sessions import CSRF_COOKIE, SESSION_COOKIE, SessionCodec
from federation.keys import Keyring
from federation.store import Store
from tests.conftest import make_settings
from tests.console.pages import csrf_token, post_form, sign_in
from tests.support import World, bearer

PAGES = (
    "/console/sign-in",
    "/console/api-keys",
    "/console/runs",
    "/console/signing-keys",
    "/console/tokens",
    "/console/try",
    "/console/static/console.css",
    "/console/static/console.js",
    "/console/no-such-page",
)


def key_ids(world: World, principal_uid: str) -> set[str]:
    listed = world.client.get(
        "/api/v1/api-keys", params={"principal_uid": principal_uid}, headers=world.admin
    )
    return {key["id"] for key in listed.json()["items"]}


@pytest.mark.parametrize("path", PAGES)
def test_every_answer_carries_the_security_headers(world: World, path: str) -> None:
    sign_in(world.client, world.admin_key)
    answer = world.client.get(path)
    assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"


def test_no_such_page_is_a_page_too(world: World) -> None:
    missing = world.client.get("/console/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "there is no console page at /console/no-such-page" in missing.text
    wrong = world.client.put("/console/api-keys")
    assert wrong.status_code == 405
    assert "PUT is not how /console/api-keys is used" in wrong.text
    assert wrong.headers["X-Frame-Options"] == "DENY"


def test_pages_have_no_inline_script_or_style(world: World) -> None:
    sign_in(world.client, world.admin_key)
    for path in PAGES[:6]:
        page = world.client.get(path).text
        assert "<script>" not in page
        assert "<style" not in page
        assert " style=" not in page
        assert not re.search(r"<[^>]+\son[a-z]+=", page), path  # no inline handlers
        assert "javascript:" not in page


def test_the_session_cookie_holds_no_readable_key_and_ends_with_the_browser(
    world: World,
) -> None:
    answer = sign_in(world.client, world.admin_key)
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in session
    assert "SameSite=strict" in session or "SameSite=Strict" in session
    assert "Path=/console" in session
    assert "Max-Age" not in session
    assert "expires" not in session.lower()
    assert world.admin_key not in session
    assert world.admin_key[3:] not in session
    assert answer.headers["location"] == "/console/api-keys"  # no key in any URL


def test_a_forged_or_foreign_session_is_not_signed_in(world: World) -> None:
    client = world.client
    other = SessionCodec(b"another console secret, 32 bytes or more").seal(
        world.admin_key, session_id=SessionCodec.new_session_id()
    )
    for value in (other, "garbage", "A" * 40):
        client.cookies.set(SESSION_COOKIE, value, path="/console")
        answer = client.get("/console/api-keys", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/sign-in"


def test_an_old_session_no_longer_opens() -> None:
    codec = SessionCodec(b"s" * 32, lifetime=3600)
    sealed = codec.seal("wk-x", now=1_000_000, session_id="s1")
    assert codec.open(sealed, now=1_000_000 + 3600) is not None
    assert codec.open(sealed, now=1_000_000 + 3601) is None
    assert codec.open(sealed, now=1_000_000 - 60) is None  # from the future


def test_replicas_sharing_a_secret_open_each_others_sessions() -> None:
    sealed = SessionCodec(b"shared secret of replicas, 32+ bytes").seal("wk-x", session_id="s1")
    opened = SessionCodec(b"shared secret of replicas, 32+ bytes").open(sealed)
    assert opened is not None
    assert opened.api_key == "wk-x"
    assert opened.session_id == "s1"


def test_a_wrong_key_is_refused_readably_and_not_echoed(world: World) -> None:
    client = world.client
    token = csrf_token(client.get("/console/sign-in").text)
    wrong = "wk-" + "A" * 43
    answer = client.post("/console/sign-in", data={"csrf_token": token, "api_key": wrong})
    assert answer.status_code == 401
    assert "Your API key is invalid or has expired" in answer.text
    assert wrong not in answer.text
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "forged",
    [
        {},  # no token
        {"csrf_token": "not-the-token"},
        {"csrf_token": SessionCodec(b"x" * 32).csrf_token("someone else's nonce")},
    ],
)
def test_a_form_without_this_browsers_csrf_token_changes_nothing(
    world: World, forged: dict[str, str]
) -> None:
    sign_in(world.client, world.admin_key)
    world.principal("u1")
    before = key_ids(world, "u1")
    answer = world.client.post(
        "/console/api-keys",
        data={**forged, "name": "sneaky", "type": "personal", "expires_in": "never"},
    )
    assert answer.status_code == 403
    assert "security token" in answer.text
    rotate = world.client.post("/console/signing-keys/rotate", data=forged)
    assert rotate.status_code == 403
    assert key_ids(world, "u1") == before
    listed = world.client.get("/api/v1/keys", headers=world.admin).json()["items"]
    assert len(listed) == 2  # no rotation happened


def test_a_form_from_another_origin_is_refused(world: World) -> None:
    sign_in(world.client, world.admin_key)
    token = csrf_token(world.client.get("/console/api-keys").text)
    answer = world.client.post(
        "/console/api-keys",
        data={"csrf_token": token, "name": "x", "type": "personal"},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert "another site" in answer.text


def test_sign_in_and_out_need_the_token_too(world: World) -> None:
    client = world.client
    client.get("/console/sign-in")
    refused = client.post("/console/sign-in", data={"api_key": world.admin_key})
    assert refused.status_code == 403
    sign_in(client, world.admin_key)
    assert client.post("/console/sign-out", data={}).status_code == 403
    assert client.get("/console/api-keys", follow_redirects=False).status_code == 200
    out = post_form(client, "/console/api-keys", "/console/sign-out")
    assert out.headers["location"] == "/console/sign-in?notice=signed-out"
    assert client.get("/console/api-keys", follow_redirects=False).status_code == 303


def test_the_csrf_nonce_changes_at_sign_in(world: World) -> None:
    client = world.client
    client.get("/console/sign-in")
    before = client.cookies.get(CSRF_COOKIE)
    sign_in(client, world.admin_key)
    assert client.cookies.get(CSRF_COOKIE) not in (None, before)


def test_a_personal_key_never_reaches_another_principals_keys(world: World) -> None:
    world.principal("ada")
    world.principal("bob", email="bob@example.com")
    ada = world.api_key("ada", name="ada-laptop")
    bob = world.api_key("bob", name="bob-secret-name")
    (bob_id,) = key_ids(world, "bob")
    sign_in(world.client, ada)

    listed = world.client.get("/console/api-keys")
    assert "ada-laptop" in listed.text
    assert "bob-secret-name" not in listed.text
    assert bob_id not in listed.text
    listed_for_bob = world.client.get("/console/api-keys?principal_uid=bob")
    assert "bob-secret-name" not in listed_for_bob.text

    confirm = world.client.get(f"/console/api-keys/{bob_id}/delete")
    assert confirm.status_code == 404
    assert "bob-secret-name" not in confirm.text
    deleted = post_form(world.client, "/console/api-keys", f"/console/api-keys/{bob_id}/delete")
    assert deleted.status_code in (403, 404)
    assert world.client.get("/api/v1/whoami", headers=bearer(bob)).status_code == 200

    # Nor mint a key in bob's name, nor an agent key for a team's service account.
    world.principal("robot", type="service_account")
    for fields in (
        {"type": "agent", "principal_uid": "bob"},
        {"type": "agent", "principal_uid": "robot"},
    ):
        made = post_form(world.client, "/console/api-keys", "/console/api-keys", name="x", **fields)
        assert made.status_code == 403, made.text
        assert "Traceback" not in made.text
    assert key_ids(world, "bob") == {bob_id}
    assert key_ids(world, "robot") == set()


def test_admin_only_pages_answer_a_personal_key_with_the_apis_refusal(world: World) -> None:
    world.principal("ada")
    sign_in(world.client, world.api_key("ada"))
    for path, scope in (
        ("/console/runs", "'runs:write' or 'admin'"),
        ("/console/tokens", "'admin'"),
    ):
        answer = world.client.get(path)
        assert answer.status_code == 403
        assert f"this API key lacks the {scope} scope" in html.unescape(answer.text)
        assert "Traceback" not in answer.text
    keys = world.client.get("/console/signing-keys")
    assert keys.status_code == 200  # the public documents are shown to everyone
    assert "lacks the 'admin' scope" in html.unescape(keys.text)
    rotate = post_form(world.client, "/console/signing-keys", "/console/signing-keys/rotate")
    assert rotate.status_code == 403
    assert len(world.client.get("/api/v1/keys", headers=world.admin).json()["items"]) == 2


def test_cookies_are_secure_behind_an_https_issuer(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock, admin_key: str
) -> None:
    settings = make_settings(tmp_path, issuer="https://issuer.example.com")
    app = create_app(settings, store=store, keyring=keyring, clock=clock)
    with TestClient(app, base_url="https://issuer.example.com") as client:
        answer = sign_in(client, admin_key)
    assert all("Secure" in c for c in answer.headers.get_list("set-cookie"))


def test_the_console_can_be_turned_off(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock
) -> None:
    settings = make_settings(tmp_path, console=False)
    app = create_app(settings, store=store, keyring=keyring, clock=clock)
    with TestClient(app) as client:
        assert client.get("/console/sign-in").status_code == 404
