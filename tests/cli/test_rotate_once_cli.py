"""`federation keys rotate` says what the rotation did: a new key, or the ``next`` key
that waits already (kept: at most one per algorithm)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import initialized_server, invoke_cli
from tests.support import LiveServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with initialized_server(tmp_path / "server") as server:
        yield server


def test_rotate_twice_shows_the_waiting_key_the_second_time(server: LiveServer) -> None:
    first = invoke_cli(server, "keys", "rotate", "--alg", "ES256", "--output-format", "json")
    assert first.returncode == 0, first.stderr
    [new] = json.loads(first.stdout)["items"]
    assert first.stderr == ""

    second = invoke_cli(server, "keys", "rotate", "--alg", "ES256")
    assert second.returncode == 0, second.stderr
    header, row = second.stdout.splitlines()
    assert header.split()[:3] == ["ROTATION", "KID", "ALG"]
    assert row.split()[:4] == ["existing", new["kid"], "ES256", "next"]
    assert f"ES256 key {new['kid']} was published already" in second.stderr
    assert "no new key was made" in second.stderr
    assert new["created"] is True

    listed = invoke_cli(server, "keys", "list", "--output-format", "json")
    states = [item["state"] for item in json.loads(listed.stdout)["items"]]
    assert states.count("next") == 1
