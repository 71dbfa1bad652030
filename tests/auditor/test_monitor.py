"""``federation log monitor`` against a log served on loopback: it follows an honest log
as it grows, and each way its operator can rewrite history, even with every checkpoint
signed by the log's own key, fails the run with exit 1 and leaves the state as it was;
rules report new entries with exit 3, once."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.auditor.logs import KEY, StaticLog, right_edge, tree_hash
from tests.cli.helpers import assert_error_line, invoke_main
from tests.transparency.logs import (
    ORIGIN,
    SUBJECTS,
    delete,
    log_key,
    rewrite,
    sample_entries,
    sample_entry,
    swap,
)

pytestmark = pytest.mark.integration

ENTRIES = sample_entries(70)
SEEN = 40  # the size the monitor saw before the operator rewrote the log


def monitor(
    log: StaticLog, state: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return invoke_main(
        "log", "monitor", "--state", str(state), *args, env={"FEDERATION_URL": log.url}, cwd=cwd
    )


def saved(state: Path) -> dict[str, object]:
    return dict(json.loads(state.read_text()))


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "monitor" / "state.json"


def test_the_first_run_reads_the_whole_log_and_pins_the_key_it_was_given(
    static_log: StaticLog, state: Path
) -> None:
    signed = static_log.publish(ENTRIES, SEEN)

    result = monitor(static_log, state)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"{ORIGIN} verified at {SEEN} entries ({SEEN} read on the first run); 0 alerts" in (
        result.stderr
    )
    assert "pinned the log key" in result.stderr  # taken from discovery, on first use
    kept = saved(state)
    # What it keeps, checked against the RFC's definitions written out in the test.
    assert kept["size"] == SEEN
    assert kept["root"] == b64(tree_hash(ENTRIES[:SEEN]))
    assert kept["frontier"] == [b64(h) for h in right_edge(ENTRIES[:SEEN])]
    assert kept["checkpoint"] == signed
    assert kept["verifier_key"] == KEY.verifier.verifier_key
    assert state.stat().st_mode & 0o777 == 0o600


def test_a_growing_log_is_followed_reading_only_the_new_entries(
    static_log: StaticLog, state: Path
) -> None:
    static_log.publish(ENTRIES, SEEN)
    assert monitor(static_log, state).returncode == 0
    static_log.publish(ENTRIES, 70)

    grown = monitor(static_log, state)
    again = monitor(static_log, state)

    assert grown.returncode == 0, grown.stderr
    assert f"verified at 70 entries (30 read since {SEEN})" in grown.stderr
    assert "pinned" not in grown.stderr  # the key now comes from the state
    assert saved(state)["frontier"] == [b64(h) for h in right_edge(ENTRIES)]
    assert again.returncode == 0, again.stderr
    assert "(0 read since 70)" in again.stderr


TAMPERING: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "an entry rewritten": rewrite,
    "an entry deleted": delete,
    "two entries reordered": swap,
}


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_history_rewritten_and_re_signed_is_caught_and_the_state_kept(
    static_log: StaticLog, state: Path, tamper: Callable[[list[bytes]], list[bytes]]
) -> None:
    static_log.publish(ENTRIES, SEEN)
    assert monitor(static_log, state).returncode == 0
    before = state.read_bytes()
    # The operator rewrites the log, and its key signs the new tree: a valid checkpoint.
    static_log.publish(tamper(ENTRIES), 70)

    result = monitor(static_log, state)

    message = assert_error_line(result, 1)
    assert "the log was rewritten" in message
    assert state.read_bytes() == before
    # The next run, against the same log, still fails: nothing was learnt from it.
    assert monitor(static_log, state).returncode == 1


def test_entries_served_other_than_signed_are_caught(static_log: StaticLog, state: Path) -> None:
    static_log.publish(ENTRIES, SEEN)
    assert monitor(static_log, state).returncode == 0
    honest = static_log.publish(ENTRIES, 70)
    other = list(ENTRIES)
    other[50] = sample_entry(50, subject="repo:attacker/repo:ref:main").encode()
    static_log.publish(other, 70)  # a new entry other than signed...
    static_log.serve_checkpoint(honest)  # ...under the honest checkpoint

    result = monitor(static_log, state)

    assert "serves other entries than it signed" in assert_error_line(result, 1)


def test_a_fork_two_signed_trees_of_one_size_is_caught(static_log: StaticLog, state: Path) -> None:
    static_log.publish(ENTRIES, SEEN)
    assert monitor(static_log, state).returncode == 0
    before = state.read_bytes()
    static_log.publish(rewrite(ENTRIES), SEEN)

    result = monitor(static_log, state)

    assert "the log forked" in assert_error_line(result, 1)
    assert state.read_bytes() == before


def test_a_rollback_to_a_smaller_tree_is_caught(static_log: StaticLog, state: Path) -> None:
    static_log.publish(ENTRIES, 70)
    assert monitor(static_log, state).returncode == 0
    before = state.read_bytes()
    static_log.publish(ENTRIES, SEEN)  # an honest, signed, older tree

    result = monitor(static_log, state)

    assert f"went back from 70 entries to {SEEN}" in assert_error_line(result, 1)
    assert state.read_bytes() == before


def test_a_checkpoint_by_another_key_of_the_same_name_is_refused(
    static_log: StaticLog, state: Path
) -> None:
    static_log.publish(ENTRIES, SEEN)
    assert monitor(static_log, state).returncode == 0
    before = state.read_bytes()
    impostor = log_key(ORIGIN, seed="someone else's key")
    static_log.publish(ENTRIES, 70, key=impostor)
    # The discovery document now names the impostor too: the pinned key still wins.
    static_log.announce(impostor.verifier.verifier_key)

    result = monitor(static_log, state)

    message = assert_error_line(result, 1)
    assert "does not verify with the pinned key" in message
    assert state.read_bytes() == before


def test_a_tampered_signature_is_refused(static_log: StaticLog, state: Path) -> None:
    signed = static_log.publish(ENTRIES, SEEN)
    text, _, line = signed.rpartition("\n\n")
    name, encoded = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    static_log.serve_checkpoint(f"{text}\n\n{name} {b64(bytes(raw))}\n")

    result = monitor(static_log, state)

    assert "does not verify" in assert_error_line(result, 1)
    assert not state.exists()  # a first run that failed keeps nothing


def test_a_key_given_on_the_command_line_is_the_one_checked(
    static_log: StaticLog, state: Path
) -> None:
    static_log.publish(ENTRIES, SEEN)
    other = log_key(ORIGIN, seed="another log").verifier.verifier_key

    refused = monitor(static_log, state, "--key", other)
    accepted = monitor(static_log, state, "--key", KEY.verifier.verifier_key)

    assert "does not verify with the pinned key" in assert_error_line(refused, 1)
    assert accepted.returncode == 0, accepted.stderr
    assert "pinned" not in accepted.stderr


RULES = """
[[rule]]
name = "AWS token outside acme"
match.aud = "sts.amazonaws.com"
unless.sub = "repo:acme/*"

[[rule]]
name = "team-1"
match.team = ["team-1"]
"""


def expected_alerts(start: int, end: int) -> list[tuple[str, int]]:
    """The alerts of RULES over entries ``start`` to ``end``, worked out from the
    sample entries' definition, not by the rules' code."""
    alerts = []
    for index in range(start, end):
        entry = sample_entry(index)
        aws = index % 3 == 0
        acme = entry.sub == SUBJECTS[0]
        if aws and not acme:
            alerts.append(("AWS token outside acme", index))
        if entry.team == "team-1":
            alerts.append(("team-1", index))
    return alerts


def test_rules_report_new_entries_once_with_exit_3(
    static_log: StaticLog, state: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    static_log.publish(ENTRIES, SEEN)

    first = monitor(static_log, state, "--rules", str(rules))
    static_log.publish(ENTRIES, 70)
    grown = monitor(static_log, state, "--rules", str(rules), "--output-format", "json")
    quiet = monitor(static_log, state, "--rules", str(rules))

    assert first.returncode == 3, first.stderr
    lines = first.stdout.splitlines()
    assert [(json.loads(line.split(" entry ")[0][6:]), int(line.split(" entry ")[1].split(":")[0]))
            for line in lines] == sorted(expected_alerts(0, SEEN), key=lambda a: a[1])  # fmt: skip
    assert all(line.startswith("ALERT ") and ' sub="' in line for line in lines)
    assert grown.returncode == 3, grown.stderr
    report = json.loads(grown.stdout)
    assert report["previous_size"] == SEEN
    assert report["size"] == 70
    assert [(a["rule"], a["index"]) for a in report["alerts"]] == sorted(
        expected_alerts(SEEN, 70), key=lambda a: a[1]
    )
    assert report["alerts"][0]["entry"] == json.loads(ENTRIES[report["alerts"][0]["index"]])
    assert saved(state)["size"] == 70  # a verified run moves on: each alert once
    assert quiet.returncode == 0, quiet.stderr


def test_alerts_are_not_reported_from_a_log_that_does_not_verify(
    static_log: StaticLog, state: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "everything"\n')
    static_log.publish(ENTRIES, SEEN)
    assert monitor(static_log, state).returncode == 0
    static_log.publish(rewrite(ENTRIES), 70)

    result = monitor(static_log, state, "--rules", str(rules))

    assert_error_line(result, 1)  # no ALERT line on stdout


def test_a_first_run_from_the_latest_tree_reads_the_tiles_not_the_entries(
    static_log: StaticLog, state: Path
) -> None:
    static_log.publish(ENTRIES, SEEN)

    result = monitor(static_log, state, "--from-latest")
    static_log.publish(ENTRIES, 70)
    grown = monitor(static_log, state)

    assert result.returncode == 0, result.stderr
    assert "(0 read on the first run)" in result.stderr
    assert saved(state)["frontier"] == [b64(h) for h in right_edge(ENTRIES)]
    assert grown.returncode == 0, grown.stderr


def test_a_first_run_from_the_latest_tree_checks_the_tiles(
    static_log: StaticLog, state: Path
) -> None:
    signed = static_log.publish(rewrite(ENTRIES), SEEN)
    honest = static_log.publish(ENTRIES, SEEN)
    assert signed != honest
    static_log.publish(rewrite(ENTRIES), SEEN)  # tiles of another tree...
    static_log.serve_checkpoint(honest)  # ...under this one

    result = monitor(static_log, state, "--from-latest")

    assert "hash tiles do not hash to its checkpoint" in assert_error_line(result, 1)
    assert not state.exists()


def test_bad_rules_and_state_files_are_usage_errors(
    static_log: StaticLog, state: Path, tmp_path: Path
) -> None:
    static_log.publish(ENTRIES, SEEN)
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "x"\nmatch.subject = "repo:*"\n')
    state.parent.mkdir(parents=True)
    state.write_text('{"format": "something else"}')

    bad_rules = monitor(static_log, tmp_path / "new.json", "--rules", str(rules))
    bad_state = monitor(static_log, state)

    assert "match.subject is not an entry field" in assert_error_line(bad_rules, 2)
    assert "is not a log monitor's state" in assert_error_line(bad_state, 2)
    assert state.read_text() == '{"format": "something else"}'


def test_a_site_without_a_log_is_a_configuration_error(static_log: StaticLog, state: Path) -> None:
    result = monitor(static_log, state, "--key", KEY.verifier.verifier_key)

    assert "no transparency log at" in assert_error_line(result, 78)
    assert not state.exists()


def test_an_empty_log_is_followed_from_its_first_entry(static_log: StaticLog, state: Path) -> None:
    static_log.publish(ENTRIES, 0)

    empty = monitor(static_log, state)
    static_log.publish(ENTRIES, 1)
    one = monitor(static_log, state)

    assert empty.returncode == 0, empty.stderr
    assert saved(state)["size"] == 1
    assert one.returncode == 0, one.stderr
    assert "(1 read since 0)" in one.stderr
