"""`federation keys ...` and `federation publish`: the entry point's ``main`` in
process; `serve`, which runs until stopped, as a real process."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from federation.keys.kek import KEK_BYTES
from tests.cli.helpers import (
    assert_error_line,
    home_env,
    initialized_server,
    invoke_cli,
    invoke_federation,
    issue_over_http,
    run_federation,
)
from tests.support import LiveServer, World


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with initialized_server(tmp_path_factory.mktemp("keys-cli")) as server:
        yield server


def kids(server: LiveServer) -> set[str]:
    jwks = httpx.get(f"{server.url}/.well-known/jwks.json", timeout=10).json()
    return {key["kid"] for key in jwks["keys"]}


def test_list_shows_states_times_and_where_keys_live(server: LiveServer) -> None:
    listed = invoke_cli(server, "keys", "list", "--output-format", "json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert {item["alg"] for item in items} >= {"ES256", "RS256"}
    for item in items:
        assert item["location"] == f"file {server.home / 'keys' / (item['kid'] + '.pem')}"
    text = invoke_cli(server, "keys", "list")
    assert "LOCATION" in text.stdout.splitlines()[0]


def test_retire_then_revoke_say_what_they_did(server: LiveServer) -> None:
    admin = World.live(server)
    agent = admin.platform_agent()
    token = issue_over_http(server, agent, audience="api://AzureADTokenExchange")["token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    old = header["kid"]

    retired = invoke_cli(server, "keys", "retire", old, "--output-format", "json")
    assert retired.returncode == 0, retired.stderr
    change = json.loads(retired.stdout)
    assert change["key"]["state"] == "retired"
    replacement = change["replacement"]["kid"]
    assert {old, replacement} <= kids(server)
    assert "warning:" in retired.stderr  # the replacement was published just now

    refused = invoke_cli(server, "keys", "revoke", old)
    assert "--yes" in assert_error_line(refused, 2)
    assert old in kids(server)

    revoked = invoke_cli(server, "keys", "revoke", old, "--yes")
    assert revoked.returncode == 0, revoked.stderr
    assert "1 unexpired tokens" in revoked.stderr
    assert old not in kids(server)

    unknown = invoke_cli(server, "keys", "retire", "no-such-kid")
    assert "not found" in assert_error_line(unknown, 1)


def test_new_kek_prints_a_fresh_256_bit_key(tmp_path: Path) -> None:
    env = home_env(tmp_path)
    first = invoke_federation(tmp_path, env, "keys", "new-kek")
    second = invoke_federation(tmp_path, env, "keys", "new-kek")
    assert first.returncode == 0
    values = [first.stdout.strip(), second.stdout.strip()]
    assert values[0] != values[1]
    for value in values:
        assert len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))) == KEK_BYTES


def test_publish_writes_what_the_server_serves(tmp_path: Path) -> None:
    home = tmp_path / "issuer"
    env = {**home_env(home), "FEDERATION_ISSUER": "https://issuer.example.com/tenant-a"}
    assert invoke_federation(home, env, "init").returncode == 0
    out, upload = tmp_path / "site", tmp_path / "gcp-jwks.json"
    published = invoke_federation(
        home, env, "publish", "--out", str(out), "--gcp-jwks", str(upload)
    )
    assert published.returncode == 0, published.stderr
    discovery = json.loads((out / ".well-known" / "openid-configuration").read_text())
    assert discovery["issuer"] == "https://issuer.example.com/tenant-a"
    assert discovery["jwks_uri"] == "https://issuer.example.com/tenant-a/.well-known/jwks.json"
    jwks = json.loads((out / ".well-known" / "jwks.json").read_text())
    assert json.loads(upload.read_text()) == jwks
    assert {key["alg"] for key in jwks["keys"]} == {"ES256", "RS256"}
    allowed = {"kty", "alg", "use", "kid", "n", "e", "x", "y", "crv"}
    assert all(set(key) <= allowed for key in jwks["keys"])
    listed = json.loads(
        invoke_federation(home, env, "keys", "list", "--local", "--output-format", "json").stdout
    )
    assert {key["kid"] for key in jwks["keys"]} == {item["kid"] for item in listed["items"]}
    assert "give --out" in assert_error_line(invoke_federation(home, env, "publish"), 2)


def test_a_wrong_kek_stops_serve_with_one_line(tmp_path: Path) -> None:
    home = tmp_path / "sealed"
    kek = invoke_federation(home, home_env(home), "keys", "new-kek").stdout.strip()
    env = {**home_env(home), "FEDERATION_KEY_STORE": "database", "FEDERATION_KEK": kek}
    assert invoke_federation(home, env, "init").returncode == 0
    other = invoke_federation(home, env, "keys", "new-kek").stdout.strip()
    wrong = {**env, "FEDERATION_KEK": other}
    message = assert_error_line(run_federation(home, wrong, "serve", timeout=30), 78, other, kek)
    assert "FEDERATION_KEK does not open signing key" in message
    missing = {key: value for key, value in env.items() if key != "FEDERATION_KEK"}
    message = assert_error_line(run_federation(home, missing, "serve", timeout=30), 78)
    assert "FEDERATION_KEK" in message
