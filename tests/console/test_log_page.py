"""The console's transparency log page over the test client: the log's head and a
token's proof, each checked in the console with the verifier key discovery names.

What the page shows is checked against what the test computes on its own: the tree's
root from the stored entries with hashlib (RFC 9162 §2.1), the entry's fields from the
token's own claims. Tampering with the stored checkpoint or an entry turns "verified"
into the failure."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from federation.api import create_app
from federation.clock import ManualClock
from federation.domain.secret_shapes import REDACTED
from federation.keys import Keyring
from federation.store import Store
from federation.store.models import LogCheckpoint, LogEntryRow
from federation.transparency import LogEntry
from tests.conftest import make_settings
from tests.console.pages import csrf_token, sign_in
from tests.support import World

FORMAT = "%Y-%m-%d %H:%M:%S UTC"  # how the console writes a moment


def text(page: str) -> str:
    """A page's text without tags, entities decoded, spaces collapsed: what a reader
    sees."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def field(page: str, element_id: str) -> str:
    """The text of the element with ``element_id``."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert found is not None, f"the page has no #{element_id}"
    return html.unescape(found.group(1)).strip()


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A compact JWT's header and claims, read with nothing but base64 and json."""

    def decoded(part: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return found

    header, payload, _ = token.split(".")
    return decoded(header), decoded(payload)


def rfc9162_root(entries: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1, written out: the split at the largest power of two
    below n."""
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    split = 1 << (len(entries) - 1).bit_length() - 1
    left, right = rfc9162_root(entries[:split]), rfc9162_root(entries[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def auditor_key(world: World) -> str:
    world.principal("auditor", type="service_account", email=None)
    return world.api_key("auditor", scopes=("audit",))


def issue(world: World, count: int) -> list[dict[str, Any]]:
    agent = world.agent()
    issued = []
    for _ in range(count):
        response = world.issue(agent)
        assert response.status_code == 200, response.text
        issued.append(response.json())
    return issued


def log_page_of(client: TestClient, size: int) -> str:
    """The log page once its head covers ``size`` entries (checkpoints are signed about
    twice a second while entries arrive)."""
    deadline = time.monotonic() + 10
    while True:
        page = client.get("/console/log")
        assert page.status_code == 200, page.text
        if field(page.text, "head-size") == str(size):
            return page.text
        assert time.monotonic() < deadline, f"no head of {size} entries in 10 s"
        time.sleep(0.05)


def stored_entries(store: Store) -> list[bytes]:
    with store.session() as session:
        return list(session.scalars(select(LogEntryRow.entry).order_by(LogEntryRow.idx)))


def test_the_head_shows_the_size_and_root_and_that_its_signature_verified(
    world: World, store: Store, clock: ManualClock
) -> None:
    sign_in(world.client, auditor_key(world))
    empty = log_page_of(world.client, 0)
    assert "Verified:" in field(empty, "head-verdict")
    assert field(empty, "head-root") == base64.b64encode(hashlib.sha256().digest()).decode()
    issue(world, 3)
    before = datetime.now(UTC).replace(microsecond=0)
    page = log_page_of(world.client, 3)
    after = datetime.now(UTC)

    published = world.client.get("/.well-known/openid-configuration").json()["transparency_log"]
    assert "Verified: the checkpoint's signature verifies" in field(page, "head-verdict")
    assert field(page, "head-origin") == published["origin"] == "127.0.0.1:8080/log"
    assert field(page, "head-key") == published["verifier_key"]
    root = base64.b64encode(rfc9162_root(stored_entries(store))).decode()
    assert field(page, "head-root") == root
    assert f"127.0.0.1:8080/log\n3\n{root}\n\n— 127.0.0.1:8080/log " in field(page, "checkpoint")
    fetched = field(page, "head-fetched")
    # The console's clock: the system's, unless the application hands it the issuer's.
    moment = datetime.strptime(fetched, FORMAT).replace(tzinfo=UTC)
    assert before <= moment <= after or fetched == clock.now().strftime(FORMAT)
    assert '<a href="/console/log" aria-current="page">Transparency log</a>' in page


def test_a_token_is_proved_by_the_jti_the_tokens_list_links(world: World) -> None:
    first, issued = issue(world, 2)
    header, claims = claims_of(issued["token"])
    sign_in(world.client, world.admin_key)
    listed = world.client.get("/console/tokens").text
    link = f'href="/console/log?jti={issued["jti"]}"'
    assert link in listed
    assert f'href="/console/log?jti={first["jti"]}"' in listed

    page = world.client.get("/console/log", params={"jti": issued["jti"]})
    assert page.status_code == 200, page.text
    assert "Verified: the log includes this token" in field(page.text, "proof-verdict")
    assert field(page.text, "proof-index") == "1"
    assert int(field(page.text, "proof-size")) >= 2
    assert field(page.text, "entry-jti") == claims["jti"] == issued["jti"]
    assert field(page.text, "entry-sub") == claims["sub"]
    audience = claims["aud"][0] if isinstance(claims["aud"], list) else claims["aud"]
    assert field(page.text, "entry-aud") == audience == "sts.amazonaws.com"
    assert field(page.text, "entry-run") == claims["run_id"]
    assert field(page.text, "entry-kid") == header["kid"]
    assert field(page.text, "entry-alg") == header["alg"]
    for name in ("iat", "exp"):
        expected = datetime.fromtimestamp(claims[name], UTC).strftime(FORMAT)
        assert field(page.text, f"entry-{name}") == expected
    assert f'value="{issued["jti"]}"' in page.text  # the jti form keeps what was asked

    unknown = world.client.get("/console/log", params={"jti": "no-such-token"})
    assert unknown.status_code == 404
    assert "The log does not include this token" in text(unknown.text)
    assert "proof-verdict" not in unknown.text


def test_a_pasted_token_is_proved_and_never_shown_nor_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    (issued,) = issue(world, 1)
    token = issued["token"]
    sign_in(world.client, auditor_key(world))
    form = world.client.get("/console/log").text
    with caplog.at_level(logging.DEBUG):
        page = world.client.post(
            "/console/log", data={"csrf_token": csrf_token(form), "token": f" {token}\n"}
        )
    assert page.status_code == 200, page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "Verified: the log includes this token" in field(page.text, "proof-verdict")
    assert field(page.text, "entry-jti") == issued["jti"]
    assert hashlib.sha256(token.encode()).hexdigest() in page.text
    signature = token.rsplit(".", 1)[1]
    # Not even redacted on the way out: never put on the page at all.
    for shown in (page.text, *page.headers.values()):
        assert token not in shown
        assert signature not in shown
        assert REDACTED not in shown
    records = [f"{record.getMessage()} {vars(record)}" for record in caplog.records]
    assert any("/console/log" in record for record in records)  # the logs were read
    assert not any(signature in record for record in records)

    refused = world.client.post(
        "/console/log", data={"csrf_token": csrf_token(form), "token": "not.a-token"}
    )
    assert refused.status_code == 400
    assert "That is not a compact JWT" in text(refused.text)
    assert "not.a-token" not in refused.text
    assert "proof-verdict" not in refused.text

    forged = world.client.post("/console/log", data={"csrf_token": "x", "token": token})
    assert forged.status_code == 403
    assert token not in forged.text
    assert signature not in forged.text


def test_a_key_without_the_audit_scope_is_told_so(world: World) -> None:
    (issued,) = issue(world, 1)
    world.principal("ada")
    sign_in(world.client, world.api_key("ada"))  # federate only
    page = world.client.get("/console/log", params={"jti": issued["jti"]})
    assert page.status_code == 403
    shown = text(page.text)
    assert "takes an API key with the audit or admin scope, and this key has neither" in shown
    assert "head-verdict" not in page.text
    assert "proof-verdict" not in page.text
    proved = world.client.post(
        "/console/log", data={"csrf_token": csrf_token(page.text), "token": issued["token"]}
    )
    assert proved.status_code == 403
    assert issued["jti"] not in proved.text


def test_the_page_says_when_the_issuer_keeps_no_log(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock, admin_key: str
) -> None:
    settings = make_settings(tmp_path, transparency_log=False)
    with TestClient(create_app(settings, store=store, keyring=keyring, clock=clock)) as client:
        sign_in(client, admin_key)
        page = client.get("/console/log")
    assert page.status_code == 404
    assert "This issuer keeps no transparency log" in text(page.text)
    assert "Transparency log</a>" in page.text  # still a page of the console


def test_a_rewritten_entry_or_checkpoint_is_not_verified(world: World, store: Store) -> None:
    issued = issue(world, 3)
    sign_in(world.client, auditor_key(world))
    log_page_of(world.client, 3)

    with store.session() as session:
        original = session.scalar(select(LogEntryRow.entry).where(LogEntryRow.idx == 1))
        assert original is not None
        forged = dataclasses.replace(LogEntry.decode(original), sub="someone-else").encode()
        session.execute(update(LogEntryRow).where(LogEntryRow.idx == 1).values(entry=forged))
    proved = world.client.get("/console/log", params={"jti": issued[1]["jti"]}).text
    assert "Not verified" in field(proved, "proof-verdict")
    assert field(proved, "entry-sub") == "someone-else"  # shown, as not verified
    assert "Verified:" in field(proved, "head-verdict")  # the head itself is intact

    with store.session() as session:
        note = session.scalar(select(LogCheckpoint.note).where(LogCheckpoint.size == 3))
        assert note is not None
        lines = note.split("\n")
        lines[2] = base64.b64encode(bytes(32)).decode()  # another root, the old signature
        session.execute(
            update(LogCheckpoint).where(LogCheckpoint.size == 3).values(note="\n".join(lines))
        )
    page = world.client.get("/console/log").text
    verdict = field(page, "head-verdict")
    assert verdict.startswith("Not verified: the signature by 127.0.0.1:8080/log")
    assert field(page, "head-root") == "A" * 43 + "="  # what the forged checkpoint says
    other = world.client.get("/console/log", params={"jti": issued[0]["jti"]}).text
    assert "Not verified" in field(other, "proof-verdict")
