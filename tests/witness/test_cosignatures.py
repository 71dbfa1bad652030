"""C2SP tlog-cosignature v1 (Ed25519): what a witness signs is checked by hand, with
``cryptography`` on the bytes the specification defines (key ID, timestamp, message),
not through the module that made it; key IDs against a witness key published elsewhere;
and a cosigned checkpoint opened with the log's key and the witness's."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from federation.clock import ManualClock
from federation.errors import InvalidRequest, LogVerificationFailed
from federation.transparency import open_checkpoint, open_note, sign_note
from federation.transparency.cosignatures import (
    Ed25519CosignatureSigner,
    Ed25519CosignatureVerifier,
    cosignatures,
    generate_witness_key,
    parse_witness_key,
    parse_witness_private_key,
    require_cosignature,
)
from tests.witness.conftest import START, WITNESS_NAME
from tests.witness.trees import MemoryLog

# A witness's cosignature key as transparency-dev/formats' tests spell it (type 0x04),
# its key ID computed by that Go code, not ours.
PUBLISHED_WITNESS_KEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"


def raw_public_key(signer: Ed25519CosignatureSigner) -> bytes:
    return signer.verifier.public_key


def hand_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public key)[:4], written out."""
    return hashlib.sha256(name.encode() + b"\n" + b"\x04" + public_key).digest()[:4]


def signature_line(note: str, name: str) -> bytes:
    """The decoded bytes of ``name``'s signature line in ``note``."""
    prefix = f"\u2014 {name} "
    (line,) = [line for line in note.splitlines() if line.startswith(prefix)]
    return base64.b64decode(line[len(prefix) :], validate=True)


def test_a_cosignature_is_the_bytes_the_specification_defines(
    witness_key: Ed25519CosignatureSigner, log: MemoryLog
) -> None:
    text = log.head().text
    note = sign_note(text, log.key, witness_key)
    raw = signature_line(note, WITNESS_NAME)

    assert len(raw) == 4 + 8 + 64
    assert raw[:4] == hand_key_id(WITNESS_NAME, raw_public_key(witness_key))
    timestamp = int.from_bytes(raw[4:12], "big")
    assert timestamp == int(START.timestamp())
    message = f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()
    public = Ed25519PublicKey.from_public_bytes(raw_public_key(witness_key))
    public.verify(raw[12:], message)  # raises InvalidSignature if it is not this message
    # The log's own line is a plain note signature over the text alone, untouched.
    log_raw = signature_line(note, log.origin)
    log.key.verifier.verify(text.encode(), log_raw[4:])


def test_the_timestamp_is_the_clocks_in_whole_seconds(
    witness_key: Ed25519CosignatureSigner, clock: ManualClock, log: MemoryLog
) -> None:
    clock.advance(timedelta(seconds=90, milliseconds=999))
    raw = signature_line(sign_note(log.head().text, witness_key), WITNESS_NAME)
    assert int.from_bytes(raw[4:12], "big") == int(START.timestamp()) + 90


def test_a_cosigned_checkpoint_opens_with_the_log_and_witness_keys_and_shows_its_time(
    witness_key: Ed25519CosignatureSigner, log: MemoryLog
) -> None:
    note_text = sign_note(log.head().text, log.key, witness_key)
    witness = parse_witness_key(witness_key.verifier.verifier_key)
    note = open_note(note_text, [log.key.verifier, witness])

    cosignature = require_cosignature(note, witness)
    assert (cosignature.name, cosignature.time) == (WITNESS_NAME, START)
    assert cosignatures(note, [witness]) == (cosignature,)
    assert open_checkpoint(note_text, [log.key.verifier, witness]) == log.head()


def test_the_witness_key_alone_does_not_make_a_checkpoint_the_logs(
    witness_key: Ed25519CosignatureSigner, log: MemoryLog
) -> None:
    note_text = sign_note(log.head().text, log.key, witness_key)
    with pytest.raises(LogVerificationFailed, match="not signed by its log's key"):
        open_checkpoint(note_text, [witness_key.verifier])


def test_a_checkpoint_without_the_witness_is_refused_when_its_cosignature_is_required(
    witness_key: Ed25519CosignatureSigner, log: MemoryLog
) -> None:
    note = open_note(log.signed(), [log.key.verifier, witness_key.verifier])
    with pytest.raises(LogVerificationFailed, match=f"no cosignature by {WITNESS_NAME}"):
        require_cosignature(note, witness_key.verifier)


def test_a_cosignature_over_another_time_or_another_tree_fails(
    witness_key: Ed25519CosignatureSigner, log: MemoryLog
) -> None:
    text = log.head().text
    raw = signature_line(sign_note(text, witness_key), WITNESS_NAME)
    later = (int.from_bytes(raw[4:12], "big") + 1).to_bytes(8, "big")
    verifier = witness_key.verifier
    assert verifier.verify(text.encode(), raw[4:])
    assert not verifier.verify(text.encode(), later + raw[12:])  # the time is signed
    assert not verifier.verify(log.head(3).text.encode(), raw[4:])
    assert not verifier.verify(text.encode(), raw[12:])  # no timestamp: not a cosignature
    forged = (
        f"{text}\n\u2014 {WITNESS_NAME} " + base64.b64encode(raw[:4] + later + raw[12:]).decode()
    )
    with pytest.raises(LogVerificationFailed, match="does not verify"):
        open_note(forged + "\n", [verifier])


def test_a_log_key_does_not_read_a_cosignature_as_its_own(
    log: MemoryLog, clock: ManualClock
) -> None:
    # The same key pair as a plain note key (0x01) and as a cosigner (0x04) has two IDs.
    private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"log key").digest())
    cosigner = Ed25519CosignatureSigner(log.origin, private, clock)
    assert cosigner.key_id != log.key.key_id
    note = sign_note(log.head().text, cosigner)
    with pytest.raises(LogVerificationFailed, match="no signature by a key this reader trusts"):
        open_note(note, [log.key.verifier])


def test_key_ids_match_a_published_witness_key() -> None:
    verifier = parse_witness_key(PUBLISHED_WITNESS_KEY)
    assert verifier.name == "remora.n621.de"
    assert verifier.key_id == 0xDA77ADE7
    assert verifier.verifier_key == PUBLISHED_WITNESS_KEY


def test_the_verifier_key_is_name_key_id_and_type_4(
    witness_key: Ed25519CosignatureSigner,
) -> None:
    name, hex_id, encoded = witness_key.verifier.verifier_key.split("+", 2)
    public = raw_public_key(witness_key)
    assert name == WITNESS_NAME
    assert bytes.fromhex(hex_id) == hand_key_id(WITNESS_NAME, public)
    assert base64.b64decode(encoded) == b"\x04" + public


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6", "type 0x01"),
        ("remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", "ID does not"),
        ("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmt", "not a witness"),
        ("remora.n621.de+da77ade+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", "8 hex digits"),
        ("remora n621+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", "not a witness"),
        ("remora.n621.de+da77ade7+A+vN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", "type 0x04"),
    ],
)
def test_a_malformed_witness_key_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_witness_key(text)


def test_a_new_key_round_trips_through_its_private_key_text(clock: ManualClock) -> None:
    signer = generate_witness_key("witness.example.test/new", clock)
    text = signer.private_key_text
    prefix, key, name, hex_id, encoded = text.split("+", 4)
    assert (prefix, key, name) == ("PRIVATE", "KEY", "witness.example.test/new")
    assert bytes.fromhex(hex_id) == hand_key_id(name, raw_public_key(signer))
    seed = base64.b64decode(encoded)
    assert seed[0] == 0x04
    assert len(seed) == 33
    derived = Ed25519PrivateKey.from_private_bytes(seed[1:]).public_key()
    assert derived.public_bytes(Encoding.Raw, PublicFormat.Raw) == raw_public_key(signer)

    again = parse_witness_private_key(text + "\n", clock)
    assert again.verifier == signer.verifier


def test_a_go_note_private_key_cosigns_as_type_4(clock: ManualClock) -> None:
    # golang.org/x/mod/sumdb/note's documented key (type 0x01), as transparency-dev's
    # witness accepts it for cosigning.
    go_key = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    signer = parse_witness_private_key(go_key, clock)
    public = raw_public_key(signer)
    assert signer.key_id == int.from_bytes(hand_key_id("PeterNeumann", public), "big")
    assert (
        base64.b64encode(b"\x01" + public).decode()
        == "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )


@pytest.mark.parametrize(
    "text",
    [
        "PRIVATE+KEY+w+00000000+BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # wrong ID
        "PRIVATE+KEY+w+00000000+AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # type 2
        "w+00000000+BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # a verifier key's shape
    ],
)
def test_a_malformed_private_key_is_refused_without_quoting_it(
    text: str, clock: ManualClock
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_witness_private_key(text, clock)
    assert "BAAAA" not in str(caught.value)
    assert "AgAAA" not in str(caught.value)


def test_a_timestamp_beyond_the_specifications_bound_never_verifies(
    witness_key: Ed25519CosignatureSigner, log: MemoryLog
) -> None:
    text = log.head().text
    timestamp = 2**63
    message = f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()
    secret = hashlib.sha256(b"witness key").digest()
    signature = Ed25519PrivateKey.from_private_bytes(secret).sign(message)
    verifier = witness_key.verifier
    assert isinstance(verifier, Ed25519CosignatureVerifier)
    assert not verifier.verify(text.encode(), timestamp.to_bytes(8, "big") + signature)
