"""A server's metrics directory: private, locked while the server lives, and the files
of stopped servers (never of running ones) removed at start-up; and the switch that
makes a worker write its metrics there."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import values

from federation.clock import ManualClock
from federation.keys import Keyring
from federation.observability import metrics_files
from federation.observability.metrics import Metrics
from federation.observability.metrics_files import LOCK, Claimed, claim


@pytest.fixture
def claims() -> Iterator[list[Claimed]]:
    made: list[Claimed] = []
    yield made
    for claimed in made:
        claimed.release()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_claim_makes_a_private_locked_directory(tmp_path: Path, claims: list[Claimed]) -> None:
    claims.append(claim(tmp_path / "metrics", pid=101))
    own = claims[0].path
    assert own == tmp_path / "metrics" / "serve-101"
    assert mode(tmp_path / "metrics") == 0o700
    assert mode(own) == 0o700
    probe = os.open(own / LOCK, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(probe)


def test_stopped_servers_files_go_and_running_servers_stay(
    tmp_path: Path, claims: list[Claimed]
) -> None:
    parent = tmp_path / "metrics"
    running = claim(parent, pid=201)
    claims.append(running)
    (running.path / "counter_7.db").write_bytes(b"live")
    stopped = claim(parent, pid=202)
    (stopped.path / "counter_8.db").write_bytes(b"old")
    stopped.release()  # the server stopped
    crashed = parent / "serve-203"  # stopped before it took its lock
    crashed.mkdir()
    (crashed / "histogram_9.db").write_bytes(b"old")
    foreign = parent / "serve-204"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a metrics file")
    claims.append(claim(parent, pid=205))
    assert (running.path / "counter_7.db").read_bytes() == b"live"
    assert not stopped.path.exists()
    assert not crashed.exists()
    assert (foreign / "notes.txt").exists()  # only metric files and locks are deleted
    assert sorted(path.name for path in parent.iterdir()) == ["serve-201", "serve-204", "serve-205"]


def test_claim_is_relative_to_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claims: list[Claimed]
) -> None:
    monkeypatch.chdir(tmp_path)
    claims.append(claim(Path("var/metrics"), pid=301))
    assert claims[0].path == tmp_path / "var" / "metrics" / "serve-301"


def test_share_makes_metrics_write_files_that_a_scrape_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claims: list[Claimed], keyring: Keyring
) -> None:
    # NOTE: process-wide; restored after the test so other tests keep in-memory metrics
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.setenv(metrics_files.ENVIRONMENT, "")
    claims.append(claim(tmp_path / "metrics", pid=401))
    directory = claims[0].path
    metrics_files.share(directory)
    assert metrics_files.shared_directory() == directory
    clock = ManualClock(datetime(2026, 11, 28, 12, tzinfo=UTC))
    writer = Metrics(keyring, clock, directory=directory)
    writer.token_signed("ES256", "sts.amazonaws.com")
    writer.request("/healthz", "GET", 503, 0.002)
    assert sorted(path.name for path in directory.glob("*.db")) == [
        f"counter_{os.getpid()}.db",
        f"histogram_{os.getpid()}.db",
    ]
    text = Metrics(keyring, clock, directory=directory).exposition().decode()  # another reader
    assert 'federation_tokens_issued_total{alg="ES256",audience="sts.amazonaws.com"} 1.0' in text
    assert 'federation_errors_total{code="resource_unavailable",status="503"} 1.0' in text
    assert 'federation_request_duration_seconds_count{method="GET",route="/healthz"} 1.0' in text
    values.ValueClass.close_all_files()


def test_metric_files_are_private_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claims: list[Claimed], keyring: Keyring
) -> None:
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.setenv(metrics_files.ENVIRONMENT, "")
    claims.append(claim(tmp_path / "metrics", pid=501))
    directory = claims[0].path
    umask = os.umask(0o022)  # the usual one, under which files are made 0644
    try:
        metrics_files.share(directory)
        clock = ManualClock(datetime(2026, 11, 28, 12, tzinfo=UTC))
        writer = Metrics(keyring, clock, directory=directory)
        writer.token_signed("ES256", "sts.amazonaws.com")
        writer.request("/healthz", "GET", 200, 0.001)
    finally:
        os.umask(umask)
        values.ValueClass.close_all_files()
    files = sorted(directory.glob("*.db"))
    assert [path.name for path in files] == [
        f"counter_{os.getpid()}.db",
        f"histogram_{os.getpid()}.db",
    ]
    assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
    assert mode(directory) == mode(directory.parent) == 0o700
