"""``federation log checkpoint`` against a log served on loopback: the signed note as
served, once the log key verified it; a discovery document whose key is not the log's
own is refused."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest

from tests.auditor.logs import KEY, StaticLog, tree_hash
from tests.cli.helpers import assert_error_line, invoke_main
from tests.transparency.logs import ORIGIN, log_key, sample_entries

pytestmark = pytest.mark.integration

ENTRIES = sample_entries(9)


def checkpoint(log: StaticLog, *args: str) -> subprocess.CompletedProcess[str]:
    return invoke_main("log", "checkpoint", *args, env={"FEDERATION_URL": log.url})


def test_the_signed_note_is_printed_as_served(static_log: StaticLog) -> None:
    signed = static_log.publish(ENTRIES, 9)

    text = checkpoint(static_log)
    pinned = checkpoint(static_log, "--key", KEY.verifier.verifier_key, "--output-format", "json")

    assert text.returncode == 0, text.stderr
    assert text.stdout == signed
    assert f"verified: {ORIGIN} at 9 entries" in text.stderr
    assert "the issuer's discovery document" in text.stderr
    assert pinned.returncode == 0, pinned.stderr
    document = json.loads(pinned.stdout)
    assert document["size"] == 9
    assert base64.b64decode(document["root"]) == tree_hash(ENTRIES)
    assert document["checkpoint"] == signed
    assert "signed by the log key from --key" in pinned.stderr


def test_a_discovery_key_named_after_another_log_is_refused(static_log: StaticLog) -> None:
    static_log.publish(ENTRIES, 9)
    static_log.announce(log_key("elsewhere.example/log").verifier.verifier_key)

    result = checkpoint(static_log)

    assert "names a log key of elsewhere.example/log" in assert_error_line(result, 1)


def test_a_key_that_is_not_one_is_a_usage_error(static_log: StaticLog) -> None:
    static_log.publish(ENTRIES, 9)

    result = checkpoint(static_log, "--key", "not-a-key")

    assert "note verifier key" in assert_error_line(result, 2)
