"""The auditor's commands against a live issuer: tokens issued through the API are
proved included (``log prove``), verified with ``verify --require-logged``, and
followed by ``log monitor``, all with an ``audit`` key and the log key the discovery
document names; without a key, or with another log key, they fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auditor.live import AWS, WAIT, cli
from tests.cli.helpers import assert_error_line, issue_over_http
from tests.support import Agent, LiveServer, serve_issuer
from tests.transparency.logs import log_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_issuer(tmp_path_factory.mktemp("issuer")) as server:
        yield server


def test_an_issued_token_is_proved_verified_and_monitored(
    server: LiveServer, audit_key: str, agent: Agent, tmp_path: Path
) -> None:
    issued = [issue_over_http(server, agent) for _ in range(3)]
    token = issued[-1]["token"]
    state = tmp_path / "state.json"

    proved = cli(server, audit_key, "log", "prove", token, "--wait", WAIT)
    by_jti = cli(
        server, audit_key, "log", "prove", "--jti", issued[0]["jti"], "--output-format", "json"
    )
    verified = cli(
        server, audit_key, "verify", token, "--audience", AWS, "--require-logged",
        "--log-wait", WAIT,
    )  # fmt: skip
    first = cli(server, audit_key, "log", "monitor", "--state", str(state))

    assert proved.returncode == 0, proved.stderr
    assert proved.stdout.splitlines()[-1] == "OK"
    record = dict(line.split(None, 1) for line in proved.stdout.splitlines()[:-1])
    assert int(record["index"]) < int(record["tree_size"])
    assert "signed by the log key from the issuer's discovery document" in proved.stderr
    assert by_jti.returncode == 0, by_jti.stderr
    document = json.loads(by_jti.stdout)
    assert document["entry"]["jti"] == issued[0]["jti"]
    assert document["entry"]["sub"] == issued[0]["subject"]
    assert document["verified"] is True
    assert verified.returncode == 0, verified.stderr
    assert "; logged as entry " in verified.stderr
    assert json.loads(verified.stdout)["claims"]["jti"] == issued[-1]["jti"]
    assert first.returncode == 0, first.stderr
    pinned = json.loads(state.read_text())
    discovery = httpx.get(f"{server.url}/.well-known/openid-configuration", timeout=10).json()
    assert pinned["verifier_key"] == discovery["transparency_log"]["verifier_key"]
    assert pinned["size"] >= int(record["tree_size"])

    # A new token, for a subject the rules do not expect: the next run reports it.
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[rule]]\nname = "nightly"\nmatch.sub = "{issued[0]["subject"]}"\n')
    newest = issue_over_http(server, agent)
    assert cli(server, audit_key, "log", "prove", newest["token"], "--wait", WAIT).returncode == 0
    second = cli(
        server, audit_key, "log", "monitor", "--state", str(state), "--rules", str(rules),
        "--output-format", "json",
    )  # fmt: skip

    assert second.returncode == 3, second.stderr
    report = json.loads(second.stdout)
    assert report["previous_size"] == pinned["size"]
    assert newest["jti"] in [alert["entry"]["jti"] for alert in report["alerts"]]


def test_without_an_audit_key_the_log_is_closed(server: LiveServer, agent: Agent) -> None:
    token = issue_over_http(server, agent)["token"]

    no_key = cli(server, None, "log", "checkpoint")
    federate_key = cli(server, agent.key, "log", "prove", token)

    assert_error_line(no_key, 77)
    assert_error_line(federate_key, 77, agent.key)


def test_another_log_key_fails_the_checks(
    server: LiveServer, audit_key: str, agent: Agent, tmp_path: Path
) -> None:
    token = issue_over_http(server, agent)["token"]
    origin = server.url.split("://", 1)[1] + "/log"
    other = log_key(origin, seed="not the issuer's key").verifier.verifier_key

    checkpoint = cli(server, audit_key, "log", "checkpoint", "--key", other)
    verified = cli(
        server, audit_key, "verify", token, "--audience", AWS, "--require-logged",
        "--log-key", other, "--log-wait", WAIT,
    )  # fmt: skip
    monitored = cli(
        server, audit_key, "log", "monitor", "--state", str(tmp_path / "s.json"), "--key", other
    )

    assert "does not verify" in assert_error_line(checkpoint, 1)
    assert "does not verify with the pinned log key" in assert_error_line(verified, 1)
    assert "does not verify with the pinned key" in assert_error_line(monitored, 1)
    assert not (tmp_path / "s.json").exists()
