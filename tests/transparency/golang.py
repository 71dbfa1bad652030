"""The Go verifier (``goverify/main.go``): built offline against Debian's Go and
``golang.org/x/mod`` (GOPATH mode, no module download, no proxy), run on a published
log, its report read back."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INSTALL = "apt-get install -y golang-go golang-golang-x-mod-dev"
# Where Debian's golang-golang-x-mod-dev puts the sources of golang.org/x/mod.
GOPATH = Path("/usr/share/gocode")
SOURCE = Path(__file__).resolve().parent / "goverify"
BUILD_DEADLINE = 300  # seconds; a cold build takes a few on a busy machine
RUN_DEADLINE = 120


def cached_build() -> Path:
    """The verifier, built once per version of its source (and of Go) for every test
    process and run of this machine: a build under a lock in the temporary directory,
    keyed by the hash of ``main.go`` and ``go version``; a cold build costs tens of
    seconds of CPU, which each xdist worker would otherwise pay again."""
    go = shutil.which("go")
    version = ""
    if go is not None:
        version = subprocess.run(
            [go, "version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    key = hashlib.sha256((SOURCE / "main.go").read_bytes() + version.encode()).hexdigest()[:16]
    home = Path(tempfile.gettempdir()) / f"federation-goverify-{os.getuid()}" / key
    home.mkdir(parents=True, exist_ok=True)
    binary = home / "goverify"
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # NOTE: one build; the other workers wait for it
        if not binary.is_file():
            built = build(home)
            assert built == binary
    return binary


def build(into: Path) -> Path:
    """Compiles the verifier into ``into``; fails the test (not skips it) with the
    command that installs what is missing."""
    go = shutil.which("go")
    if go is None:
        pytest.fail(f"Go is not installed; the transparency log's tests need it: {INSTALL}")
    if not (GOPATH / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        pytest.fail(f"golang.org/x/mod is not installed under {GOPATH}: {INSTALL}")
    binary = into / "goverify"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(into),
        "GO111MODULE": "off",  # GOPATH mode: the imports come from Debian's sources
        "GOPATH": str(GOPATH),
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOENV": "off",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GOCACHE": str(into / "cache"),
    }
    try:
        done = subprocess.run(
            [go, "build", "-o", str(binary), "."],
            cwd=SOURCE,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_DEADLINE,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"building the Go verifier took over {BUILD_DEADLINE} s")
    if done.returncode != 0:
        pytest.fail(f"the Go verifier did not build ({INSTALL}?):\n{done.stderr}")
    return binary


@dataclass(frozen=True)
class Report:
    """What the Go verifier checked, and every failure it found."""

    checkpoints: int
    entries: int
    inclusion: int
    consistency: int
    failures: list[str]


def verify(binary: Path, directory: Path, request: dict[str, Any]) -> Report:
    """Runs the verifier on ``directory`` with ``request`` (proofs as lists of bytes);
    exit status 0 must come with no failure, 1 with some."""
    body = json.dumps(_wire(request))
    try:
        done = subprocess.run(
            [str(binary), str(directory)],
            input=body,
            capture_output=True,
            text=True,
            timeout=RUN_DEADLINE,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the Go verifier ran over {RUN_DEADLINE} s")
    if done.returncode not in (0, 1):
        pytest.fail(f"the Go verifier could not run ({done.returncode}):\n{done.stderr}")
    report = Report(**json.loads(done.stdout))
    assert (done.returncode == 1) == bool(report.failures), done.stdout
    return report


def _wire(value: Any) -> Any:
    """JSON for Go: bytes as standard base64 (how encoding/json reads []byte)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(item) for item in value]
    return value
