"""Fixtures of the witness's tests: a log, a witness key on a clock the test moves, and
the witness served over HTTP on loopback from a thread (stopped with a deadline when
the test ends, even when it fails)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.auditor.witness import Witness, witness_app
from federation.auditor.witness_state import WitnessState
from federation.clock import ManualClock
from federation.stand_ins.serving import serve
from federation.transparency.cosignatures import Ed25519CosignatureSigner
from tests.witness.trees import MemoryLog

WITNESS_NAME = "witness.example.test/w1"
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

ServeWitness = Callable[[], AbstractContextManager[str]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def witness_key(clock: ManualClock) -> Ed25519CosignatureSigner:
    secret = hashlib.sha256(b"witness key").digest()
    return Ed25519CosignatureSigner(
        WITNESS_NAME, Ed25519PrivateKey.from_private_bytes(secret), clock
    )


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog(5)


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "witness" / "state.json"


@pytest.fixture
def serve_witness(
    witness_key: Ed25519CosignatureSigner, log: MemoryLog, state_file: Path
) -> ServeWitness:
    """Serves a witness of ``log`` on its state file; each call starts one (after the
    last stopped: a restart)."""

    @contextmanager
    def served() -> Iterator[str]:
        state = WitnessState.open(state_file)
        try:
            witness = Witness(witness_key, [log.key.verifier], state)
            with serve(witness_app(witness), timeout=10.0) as url:
                yield url
        finally:
            state.close()

    return served


@pytest.fixture
def witness_url(serve_witness: ServeWitness) -> Iterator[str]:
    with serve_witness() as url:
        yield url
