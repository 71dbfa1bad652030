"""C2SP checkpoints: their text, the signature of the log's key, and the checks that
join one checkpoint to the next and to the entries."""

from __future__ import annotations

import base64

import pytest

from federation.errors import InvalidRequest, LogVerificationFailed
from federation.transparency import (
    Checkpoint,
    MemoryHashes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    open_checkpoint,
    sign_checkpoint,
    tree_hash,
)
from tests.transparency.logs import ORIGIN, log_key, sample_entries

# The example of the tlog-checkpoint specification.
EXAMPLE = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
KEY = log_key()


def test_the_specifications_example_reads_and_writes_back() -> None:
    checkpoint = Checkpoint.parse(EXAMPLE)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.text == EXAMPLE


def test_extension_lines_are_kept() -> None:
    text = EXAMPLE + "an extension\nanother one\n"
    checkpoint = Checkpoint.parse(text)
    assert checkpoint.extensions == ("an extension", "another one")
    assert checkpoint.text == text


@pytest.mark.parametrize(
    "text",
    [
        EXAMPLE.rstrip("\n"),
        EXAMPLE.replace("20852163", "020852163"),
        EXAMPLE.replace("20852163", "+20852163"),
        EXAMPLE.replace("20852163", "-1"),
        EXAMPLE.replace("20852163", " 20852163"),
        EXAMPLE.replace("20852163", "9223372036854775808"),
        EXAMPLE.replace("20852163", "9" * 5000),
        EXAMPLE.replace("2I=", "2J="),  # non-canonical base64 (unused bits set)
        EXAMPLE.replace("2I=", "2I"),
        EXAMPLE.replace("CsUY", ""),
        "\n" + EXAMPLE.split("\n", 1)[1],  # no origin
        EXAMPLE + "\n",  # an empty extension line
        "example.com/log\n5\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(LogVerificationFailed):
        Checkpoint.parse(text)


def test_a_checkpoint_is_checked_when_made() -> None:
    with pytest.raises(InvalidRequest):
        Checkpoint("", 1, b"\x00" * 32)
    with pytest.raises(InvalidRequest):
        Checkpoint("a\nb", 1, b"\x00" * 32)
    with pytest.raises(InvalidRequest):
        Checkpoint("a", -1, b"\x00" * 32)
    with pytest.raises(InvalidRequest):
        Checkpoint("a", 1, b"\x00" * 31)
    with pytest.raises(InvalidRequest):
        Checkpoint("a", 1, b"\x00" * 32, ("",))


def test_signed_and_opened_with_the_logs_key() -> None:
    checkpoint = Checkpoint(ORIGIN, 5, b"\x01" * 32)
    message = sign_checkpoint(checkpoint, KEY)
    assert message.startswith(checkpoint.text + "\n— issuer.example.test/log ")
    assert open_checkpoint(message, [KEY.verifier]) == checkpoint
    assert open_checkpoint(message.encode(), [KEY.verifier], origin=ORIGIN) == checkpoint
    with pytest.raises(LogVerificationFailed, match=r"not other\.example\.test/log"):
        open_checkpoint(message, [KEY.verifier], origin="other.example.test/log")


def test_only_the_key_named_after_the_origin_signs_for_the_log() -> None:
    witness = log_key("witness.example.test", seed="witness")
    checkpoint = Checkpoint(ORIGIN, 5, b"\x01" * 32)
    with pytest.raises(InvalidRequest, match="named after the checkpoint's origin"):
        sign_checkpoint(checkpoint, witness)
    cosigned = sign_checkpoint(checkpoint, KEY, witness)
    # A cosigner alone does not make a tree head the log's.
    with pytest.raises(LogVerificationFailed, match="not signed by its log's key"):
        open_checkpoint(cosigned, [witness.verifier])
    assert open_checkpoint(cosigned, [KEY.verifier, witness.verifier]) == checkpoint


def heads(entries: list[bytes], *sizes: int) -> tuple[MemoryHashes, list[Checkpoint]]:
    memory = MemoryHashes(leaf_hash(entry) for entry in entries)
    return memory, [Checkpoint(ORIGIN, n, tree_hash(n, memory)) for n in sizes]


def test_a_later_checkpoint_extends_an_earlier_one() -> None:
    memory, (old, new) = heads(sample_entries(40), 17, 40)
    new.verify_extends(old, consistency_proof(17, 40, memory))
    new.verify_extends(new, [])
    with pytest.raises(LogVerificationFailed, match="went back from 40 entries to 17"):
        old.verify_extends(new, [])
    other = Checkpoint("other.example.test/log", 17, old.root)
    with pytest.raises(LogVerificationFailed, match="is not the log"):
        new.verify_extends(other, consistency_proof(17, 40, memory))


def test_inclusion_against_a_checkpoint() -> None:
    entries = sample_entries(40)
    memory, (head,) = heads(entries, 33)
    head.verify_inclusion(leaf_hash(entries[20]), 20, inclusion_proof(20, 33, memory))
    with pytest.raises(LogVerificationFailed):
        head.verify_inclusion(leaf_hash(entries[21]), 20, inclusion_proof(20, 33, memory))


def test_entries_are_checked_against_a_checkpoint_from_an_earlier_edge() -> None:
    entries = sample_entries(40)
    _, (first, second) = heads(entries, 17, 40)
    edge = first.verify_entries(entries[:17])
    assert second.verify_entries(entries[17:], start=edge).size == 40
    assert edge.size == 17  # the start is not changed
    with pytest.raises(LogVerificationFailed, match="39 entries for a checkpoint of 40"):
        second.verify_entries(entries[17:39], start=edge)
    with pytest.raises(LogVerificationFailed, match="do not hash to the root"):
        second.verify_entries([*entries[17:39], entries[0]], start=edge)
