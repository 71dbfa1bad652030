"""The benchmark harness end to end, in smoke mode: it runs, checks what it must, and
writes its three files. Nothing here is about speed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = ("hello", "issue-token", "jwks", "discovery")
STAGES = (
    "pool",
    "caller read",
    "run read",
    "checks + claims",
    "sign",
    "audit insert + commit",
    "direct issue (whole)",
    "ASGI request (whole)",
    "ASGI hello (whole)",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(240)
def test_smoke_run_writes_checked_results(tmp_path: Path) -> None:
    # NOTE: no skip: without its load generator the harness would rot unseen (.ci/run
    # installs wrk)
    assert shutil.which("wrk"), "the load generator wrk is not installed (apt-get install wrk)"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ratio summary" in done.stdout

    results = json.loads((tmp_path / "latest.json").read_text())
    configurations = results["configurations"]
    assert {(c["database"], c["workers"]) for c in configurations} == {
        ("sqlite", 1),
        ("sqlite", 2),
    }
    for configuration in configurations:
        assert configuration["error"] is None
        runs = {run["endpoint"]: run for run in configuration["runs"]}
        assert set(runs) == set(ENDPOINTS)
        for endpoint, run in runs.items():
            assert run["load"]["requests"] > 0, endpoint
            assert run["load"]["error_total"] == 0, (endpoint, run["load"])
        assert runs["issue-token"]["audit"]["ok"] is True
        assert configuration["deleted_key"]["ok"] is True
    assert results["checks"] == {"audit": True, "deleted_key": True}
    assert results["mint"]["ratio"] > 0
    (breakdown,) = results["stages"]
    assert breakdown["database"] == "sqlite"
    assert breakdown["error"] is None
    measured = {s["name"]: s["us"] for s in breakdown["stages"] if not s["derived"]}
    assert set(measured) == set(STAGES)
    for stage, microseconds in measured.items():
        assert microseconds > 0, stage
    assert breakdown["bound"] > 0
    assert results["machine"]["cpu_model"]
    assert {target["name"] for target in results["targets"]}

    assert (tmp_path / "latest.png").read_bytes().startswith(PNG_SIGNATURE)
    markdown = (tmp_path / "latest.md").read_text()
    assert "## Ratios to hello" in markdown
    assert "| configuration | connections | issue-token | jwks | discovery |" in markdown
    assert "## Where issue-token's time goes (in process, one core)" in markdown
    assert "| stage | µs | share |" in markdown
    assert "bound (hello / request" in done.stdout
