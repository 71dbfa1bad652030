"""The CLI keeps its one-line contract when the world is not as expected, and never
sends an API key where it should not go: the entry point's ``main`` in process."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.cli.helpers import assert_error_line, home_env, invoke_federation

KEY = "wk-" + "k" * 43


class _Canned(BaseHTTPRequestHandler):
    """A loopback web server that is not an issuer: canned answers per path."""

    answers: ClassVar[dict[str, tuple[str, bytes]]] = {}
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        content_type, body = self.answers.get(self.path, ("text/html", b"<html>hello</html>"))
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    _Canned.answers, _Canned.seen = {}, []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_server_that_is_not_an_issuer_is_one_line(tmp_path: Path, web: str) -> None:
    env = {**home_env(tmp_path), "FEDERATION_URL": web, "WARP_API_KEY": KEY}
    result = invoke_federation(tmp_path, env, "whoami")
    message = assert_error_line(result, 78, KEY)
    assert "FEDERATION_URL" in message


def test_no_api_key_over_plain_http_to_another_host(tmp_path: Path) -> None:
    env = {**home_env(tmp_path), "FEDERATION_URL": "http://issuer.example.com", "WARP_API_KEY": KEY}
    result = invoke_federation(tmp_path, env, "whoami")
    message = assert_error_line(result, 78, KEY)
    assert "plain http" in message


def test_the_admin_key_file_serves_only_a_local_issuer(tmp_path: Path, web: str) -> None:
    env = home_env(tmp_path)
    admin_file = Path(env["FEDERATION_ADMIN_KEY_FILE"])
    admin_file.parent.mkdir(parents=True)
    admin_file.write_text(KEY + "\n")
    remote = {**env, "FEDERATION_URL": "https://issuer.example.com"}
    message = assert_error_line(invoke_federation(tmp_path, remote, "principals", "list"), 2, KEY)
    assert "no API key" in message
    local = {**env, "FEDERATION_URL": web}
    invoke_federation(tmp_path, local, "principals", "list")
    assert _Canned.seen == [f"Bearer {KEY}"]  # the file's key went to the loopback server


def test_a_jwks_without_keys_does_not_verify(tmp_path: Path, web: str) -> None:
    discovery = {"issuer": web, "jwks_uri": f"{web}/.well-known/jwks.json"}
    _Canned.answers = {
        "/.well-known/openid-configuration": ("application/json", json.dumps(discovery).encode()),
        "/.well-known/jwks.json": ("application/json", b'{"not_keys": []}'),
    }
    header = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ"  # {"alg":"ES256","kid":"k"}
    token = f"{header}.eyJzdWIiOiJ4In0.c2ln"
    env = {**home_env(tmp_path), "FEDERATION_URL": web}
    result = invoke_federation(tmp_path, env, "verify", token, "--audience", "a")
    assert_error_line(result, 1)


def test_an_unusable_keys_directory_stops_init_with_its_name(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = {**home_env(tmp_path), "FEDERATION_KEYS_DIR": str(blocker / "keys")}
    message = assert_error_line(invoke_federation(tmp_path, env, "init"), 78)
    assert str(blocker) in message
