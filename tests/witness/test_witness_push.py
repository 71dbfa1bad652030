"""Pushing a log's newest checkpoint to the witness on loopback: the client learns the
witness's size from its 409 and proves consistency from there; a fork, a log that went
back, an unknown log and a witness that is not there are reported as the project's
errors."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.auditor.witness_push import WitnessClient, push_checkpoint
from federation.clock import ManualClock
from federation.errors import (
    InvalidRequest,
    LogVerificationFailed,
    ResourceNotFound,
    ResourceUnavailable,
)
from federation.transparency import NoteVerifier, open_checkpoint, open_note
from federation.transparency.cosignatures import Ed25519CosignatureSigner, require_cosignature
from tests.support import free_port
from tests.transparency.logs import log_key
from tests.witness.conftest import START, WITNESS_NAME
from tests.witness.trees import MemoryLog


class CountingLog(MemoryLog):
    """A log that counts the consistency proofs it is asked for."""

    proofs: list[tuple[int, int]]

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        self.proofs.append((old_size, new_size))
        return super().consistency(old_size, new_size)


@pytest.fixture
def counting() -> CountingLog:
    log = CountingLog(5)
    log.proofs = []
    return log


@pytest.fixture
def log(counting: CountingLog) -> MemoryLog:
    return counting  # the witness (conftest) knows this log's key


def test_a_push_brings_back_a_verified_cosignature(
    witness_url: str, counting: CountingLog, witness_key: Ed25519CosignatureSigner
) -> None:
    with WitnessClient(witness_url) as witness:
        pushed = push_checkpoint(counting, witness, witness_key=witness_key.verifier)
    assert pushed.checkpoint == counting.head()
    assert pushed.cosignature is not None
    assert (pushed.cosignature.name, pushed.cosignature.time) == (WITNESS_NAME, START)
    verifiers: list[NoteVerifier] = [counting.key.verifier, witness_key.verifier]
    assert open_checkpoint(pushed.note, verifiers) == counting.head()
    require_cosignature(open_note(pushed.note, verifiers), witness_key.verifier)
    assert counting.proofs == []  # from the empty tree: no proof


def test_later_pushes_prove_consistency_from_the_witnesses_size(
    witness_url: str, counting: CountingLog, witness_key: Ed25519CosignatureSigner
) -> None:
    with WitnessClient(witness_url) as witness:
        push_checkpoint(counting, witness)
        counting.grow(40)
        pushed = push_checkpoint(counting, witness, witness_key=witness_key.verifier)
        assert pushed.checkpoint.size == 45
        assert counting.proofs == [(5, 45)]  # told 5 by the witness's 409
        # Nothing new: the same size, no proof, cosigned again.
        assert push_checkpoint(counting, witness, old_size=45).checkpoint.size == 45
    assert counting.proofs == [(5, 45)]


def test_a_fork_pushed_to_the_witness_is_reported(witness_url: str, log: MemoryLog) -> None:
    with WitnessClient(witness_url) as witness:
        push_checkpoint(log, witness)
        fork = MemoryLog(9, salt=b"rewritten ")
        with pytest.raises(LogVerificationFailed, match="forked or rewritten"):
            push_checkpoint(fork, witness)


def test_a_log_that_went_back_is_reported(witness_url: str, log: MemoryLog) -> None:
    with WitnessClient(witness_url) as witness:
        push_checkpoint(log, witness)
        with pytest.raises(LogVerificationFailed, match=r"has cosigned 5 entries .* holds \(3\)"):
            push_checkpoint(MemoryLog(3), witness)


def test_a_log_the_witness_does_not_know_is_reported(witness_url: str) -> None:
    other = MemoryLog(2, key=log_key("other.example.test/log"))
    with WitnessClient(witness_url) as witness, pytest.raises(ResourceNotFound, match="--log"):
        push_checkpoint(other, witness)


def test_a_cosignature_by_another_key_fails_verification(
    witness_url: str, log: MemoryLog, clock: ManualClock
) -> None:
    secret = hashlib.sha256(b"stranger").digest()
    stranger = Ed25519CosignatureSigner(
        WITNESS_NAME, Ed25519PrivateKey.from_private_bytes(secret), clock
    )
    with (
        WitnessClient(witness_url) as witness,
        pytest.raises(LogVerificationFailed, match=f"no valid cosignature by {WITNESS_NAME}"),
    ):
        push_checkpoint(log, witness, witness_key=stranger.verifier)


def test_no_witness_at_the_url_is_unavailable(log: MemoryLog) -> None:
    with (
        WitnessClient(f"http://127.0.0.1:{free_port()}") as witness,
        pytest.raises(ResourceUnavailable, match="cannot reach the witness"),
    ):
        push_checkpoint(log, witness)


def test_a_409_without_a_size_is_not_taken_for_one(log: MemoryLog) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(409, text="busy"))
    with (
        WitnessClient("http://witness.test", transport=transport) as witness,
        pytest.raises(InvalidRequest, match="409 without its size"),
    ):
        push_checkpoint(log, witness)
