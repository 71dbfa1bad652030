"""The witness over HTTP on loopback, as a log talks to it (C2SP tlog-witness): it
cosigns a first checkpoint and each one a valid proof extends, answers 409 with its
size to a client that is behind, and refuses a bad proof, a fork, a bad signature and
an unknown log with the statuses the specification names; what it recorded survives
a restart."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.auditor.witness_state import WitnessState
from federation.errors import ConfigurationError
from federation.transparency import sign_note
from federation.transparency.cosignatures import Ed25519CosignatureSigner
from tests.transparency.logs import log_key
from tests.witness.conftest import START, WITNESS_NAME, ServeWitness
from tests.witness.trees import MemoryLog


def body(old: int, proof: Sequence[bytes], checkpoint: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + checkpoint).encode()


def add(url: str, content: bytes) -> httpx.Response:
    return httpx.post(f"{url}/add-checkpoint", content=content, timeout=10)


def assert_cosigns(
    response: httpx.Response, checkpoint_text: str, key: Ed25519CosignatureSigner
) -> None:
    """The answer is one cosignature line by the witness over ``checkpoint_text``,
    checked by hand (key ID, timestamp, Ed25519 over the v1 message)."""
    assert response.status_code == 200, response.text
    prefix = f"\u2014 {WITNESS_NAME} "
    assert response.text.startswith(prefix)
    assert response.text.endswith("\n")
    assert response.text.count("\n") == 1
    raw = base64.b64decode(response.text[len(prefix) : -1], validate=True)
    public = key.verifier.public_key
    assert raw[:4] == hashlib.sha256(WITNESS_NAME.encode() + b"\n\x04" + public).digest()[:4]
    timestamp = int.from_bytes(raw[4:12], "big")
    assert timestamp == int(START.timestamp())
    message = f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()
    Ed25519PublicKey.from_public_bytes(public).verify(raw[12:], message)


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document = response.json()
    assert isinstance(document, dict)
    return document


def recorded_size(state_file: Path, origin: str) -> int:
    return int(json.loads(state_file.read_text())["logs"][origin]["size"])


def test_a_first_checkpoint_is_cosigned_and_recorded(
    witness_url: str, log: MemoryLog, witness_key: Ed25519CosignatureSigner, state_file: Path
) -> None:
    response = add(witness_url, body(0, [], log.signed()))
    assert_cosigns(response, log.head().text, witness_key)
    assert recorded_size(state_file, log.origin) == 5
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600


def test_a_checkpoint_a_valid_proof_extends_is_cosigned(
    witness_url: str, log: MemoryLog, witness_key: Ed25519CosignatureSigner, state_file: Path
) -> None:
    assert add(witness_url, body(0, [], log.signed())).status_code == 200
    log.grow(300)
    response = add(witness_url, body(5, log.consistency(5, 305), log.signed()))
    assert_cosigns(response, log.head().text, witness_key)
    assert recorded_size(state_file, log.origin) == 305
    # The same tree again (no proof needed) is cosigned again.
    assert_cosigns(add(witness_url, body(305, [], log.signed())), log.head().text, witness_key)


def test_a_client_behind_the_witness_is_told_its_size(witness_url: str, log: MemoryLog) -> None:
    assert add(witness_url, body(0, [], log.signed(3))).status_code == 200
    for old in (0, 2, 4):
        response = add(witness_url, body(old, log.consistency(old, 5) if old else [], log.signed()))
        assert response.status_code == 409
        assert response.headers["content-type"] == "text/x.tlog.size"
        assert response.text == "3\n"


def test_a_proof_that_does_not_verify_is_refused_and_nothing_recorded(
    witness_url: str, log: MemoryLog, state_file: Path
) -> None:
    assert add(witness_url, body(0, [], log.signed(5))).status_code == 200
    log.grow(20)
    proof = log.consistency(5, 25)
    broken = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    for bad in (broken, proof[:-1], [*proof, proof[0]], []):
        document = problem(add(witness_url, body(5, bad, log.signed())), 422)
        assert "not consistent with the tree of size 5" in str(document["detail"])
    assert recorded_size(state_file, log.origin) == 5


def test_a_fork_is_refused(
    witness_url: str, log: MemoryLog, state_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert add(witness_url, body(0, [], log.signed())).status_code == 200
    fork = MemoryLog(5, salt=b"another history ")  # the same key, other entries
    # The same size with another root...
    problem(add(witness_url, body(5, [], fork.signed())), 422)
    # ...and a larger tree that extends the fork, with the fork's own valid proof.
    fork.grow(7)
    document = problem(add(witness_url, body(5, fork.consistency(5, 12), fork.signed())), 422)
    assert document["status"] == 422
    assert recorded_size(state_file, log.origin) == 5
    # The log's signed word against itself is kept as evidence.
    assert fork.signed() in caplog.text


def test_an_old_size_above_the_checkpoints_is_a_bad_request(
    witness_url: str, log: MemoryLog
) -> None:
    problem(add(witness_url, body(6, [], log.signed())), 400)


def test_a_bad_log_signature_is_forbidden(witness_url: str, log: MemoryLog) -> None:
    signed = log.signed()
    text, _, line = signed.rpartition("\n\u2014 ")
    name, _, encoded = line.partition(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    tampered = f"{text}\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
    problem(add(witness_url, body(0, [], tampered)), 403)
    # Another key under the log's name is unknown: no signature the witness trusts.
    impostor = sign_note(log.head().text, log_key(seed="impostor"))
    problem(add(witness_url, body(0, [], impostor)), 403)


def test_an_unknown_log_is_not_found(witness_url: str) -> None:
    other = MemoryLog(2, key=log_key("other.example.test/log"))
    document = problem(add(witness_url, body(0, [], other.signed())), 404)
    assert "other.example.test/log" in str(document["detail"])


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"old 0\n",
        b"old -1\n\nx\n",
        b"old 01\n\nx\n",
        b"new 0\n\nx\n",
        b"old 0\nnot-base64\n\nx\n",
        b"old 0\n" + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + b"\nx\n",
    ],
)
def test_a_malformed_request_is_a_bad_request(witness_url: str, content: bytes) -> None:
    problem(add(witness_url, content), 400)


def test_an_oversized_request_is_refused(witness_url: str) -> None:
    problem(add(witness_url, b"old 0\n\n" + b"x" * 70_000), 413)


def test_a_proof_from_the_empty_tree_must_be_empty(witness_url: str, log: MemoryLog) -> None:
    problem(add(witness_url, body(0, [hashlib.sha256(b"x").digest()], log.signed())), 422)


def test_an_empty_tree_has_the_empty_trees_hash(witness_url: str, log: MemoryLog) -> None:
    assert add(witness_url, body(0, [], log.signed(0))).status_code == 200
    wrong = log.head(0).text.replace(
        base64.b64encode(hashlib.sha256(b"").digest()).decode(),
        base64.b64encode(hashlib.sha256(b"x").digest()).decode(),
    )
    problem(add(witness_url, body(0, [], sign_note(wrong, log.key))), 422)


def test_the_latest_cosigned_checkpoint_is_served_for_monitors(
    witness_url: str, log: MemoryLog, witness_key: Ed25519CosignatureSigner
) -> None:
    origin_hash = hashlib.sha256(log.origin.encode()).hexdigest()
    assert httpx.get(f"{witness_url}/{origin_hash}/checkpoint").status_code == 404
    response = add(witness_url, body(0, [], log.signed()))
    served = httpx.get(f"{witness_url}/{origin_hash}/checkpoint")
    assert served.status_code == 200
    assert served.text == log.signed() + response.text  # the log's line, then the witness's


def test_what_the_witness_recorded_survives_a_restart(
    serve_witness: ServeWitness, log: MemoryLog, state_file: Path
) -> None:
    with serve_witness() as url:
        assert add(url, body(0, [], log.signed())).status_code == 200
    log.grow(10)
    with serve_witness() as url:
        behind = add(url, body(0, [], log.signed()))
        assert (behind.status_code, behind.text) == (409, "5\n")
        # A rollback to a smaller tree cannot be proved from 5: refused.
        problem(add(url, body(5, [], log.signed(4))), 400)
        assert add(url, body(5, log.consistency(5, 15), log.signed())).status_code == 200
    assert recorded_size(state_file, log.origin) == 15


def test_two_witnesses_never_share_a_state_file(witness_url: str, state_file: Path) -> None:
    with pytest.raises(ConfigurationError, match="another witness uses the state"):
        WitnessState.open(state_file)


def test_a_state_file_that_is_not_a_witnesses_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"version": 1, "logs": {"a": {"size": -1}}}')
    with pytest.raises(ConfigurationError, match="is not a witness state"):
        WitnessState.open(path)
