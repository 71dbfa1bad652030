"""C2SP signed notes with Ed25519 keys: the example Go's sumdb/note documents, byte for
byte, and how opening a note treats unknown, bad and missing signatures."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.errors import InvalidRequest, LogVerificationFailed
from federation.transparency import (
    Ed25519NoteSigner,
    NoteSignature,
    open_note,
    parse_verifier_key,
    sign_note,
)
from tests.transparency.logs import log_key

# golang.org/x/mod/sumdb/note's documented example: a signer key, its verifier key, and
# the signed note it makes (Ed25519 signatures are deterministic).
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n"
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqf"
    "qdngotpRZb6KE6RyyBwJnAM=\n"
)


def go_signer() -> Ed25519NoteSigner:
    _, _, name, _, encoded = GO_SIGNER_KEY.split("+", 4)  # base64 may hold a +
    seed = base64.b64decode(encoded)[1:]  # 0x01 || the 32-byte seed
    return Ed25519NoteSigner(name, Ed25519PrivateKey.from_private_bytes(seed))


def test_the_verifier_key_is_the_one_go_writes() -> None:
    signer = go_signer()
    assert signer.verifier.verifier_key == GO_VERIFIER_KEY
    assert signer.key_id == 0xC74F20A3
    assert parse_verifier_key(GO_VERIFIER_KEY) == signer.verifier


def test_the_signed_note_is_the_one_go_writes() -> None:
    assert sign_note(GO_TEXT, go_signer()) == GO_NOTE
    note = open_note(GO_NOTE, [parse_verifier_key(GO_VERIFIER_KEY)])
    assert note.text == GO_TEXT
    assert [(s.name, s.key_id) for s in note.signatures] == [("PeterNeumann", 0xC74F20A3)]
    assert open_note(GO_NOTE.encode("utf-8"), [go_signer().verifier]).text == GO_TEXT


def test_every_mangling_of_a_verifier_key_is_refused() -> None:
    # As Go's own test does: every proper substring, and every byte changed by one.
    key = GO_VERIFIER_KEY
    accepted = []
    for i in range(len(key) + 1):
        for j in range(i + 1, len(key) + 1):
            if (i, j) != (0, len(key)):
                try:
                    parse_verifier_key(key[i:j])
                    accepted.append(key[i:j])
                except InvalidRequest:
                    pass
    for i in range(len(key)):
        mangled = key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :]
        try:
            parse_verifier_key(mangled)
            accepted.append(mangled)
        except InvalidRequest:
            pass
    assert accepted == []
    assert parse_verifier_key(key.replace("c74f20a3", "C74F20A3")).key_id == 0xC74F20A3


def test_signatures_by_unknown_keys_are_kept_unverified_and_a_cosignature_added() -> None:
    witness = log_key("witness.example.test", seed="witness")
    cosigned = sign_note(
        GO_TEXT, witness, keep=open_note(GO_NOTE, [go_signer().verifier]).signatures
    )
    assert cosigned.startswith(GO_NOTE)  # the log's line first, then the witness's
    note = open_note(cosigned, [go_signer().verifier])
    assert [s.name for s in note.signatures] == ["PeterNeumann"]
    assert [s.name for s in note.unverified] == ["witness.example.test"]
    both = open_note(cosigned, [go_signer().verifier, witness.verifier])
    assert [s.name for s in both.signatures] == ["PeterNeumann", "witness.example.test"]


def test_a_note_needs_a_signature_by_a_key_the_reader_trusts() -> None:
    other = log_key("PeterNeumann", seed="an impostor with the same name")
    with pytest.raises(LogVerificationFailed, match="no signature by a key this reader trusts"):
        open_note(GO_NOTE, [other.verifier])
    with pytest.raises(LogVerificationFailed, match="no signature by a key"):
        open_note(GO_NOTE, [])


def test_a_failing_signature_by_a_known_key_rejects_the_note() -> None:
    changed = GO_NOTE.replace("problem is", "problem was")
    with pytest.raises(LogVerificationFailed, match="by PeterNeumann does not verify"):
        open_note(changed, [go_signer().verifier])
    # Even when another known key's signature verifies.
    witness = log_key("witness.example.test", seed="witness")
    bad = sign_note(changed.split("\n\n")[0] + "\n", witness) + GO_NOTE.split("\n\n")[1]
    with pytest.raises(LogVerificationFailed, match="does not verify"):
        open_note(bad, [go_signer().verifier, witness.verifier])


@pytest.mark.parametrize(
    "message",
    [
        GO_TEXT,  # no signature block
        GO_NOTE.rstrip("\n"),
        GO_NOTE.replace("— ", "- "),
        GO_NOTE.replace("— PeterNeumann ", "— PeterNeumann  "),
        GO_NOTE.replace("x08go/", "x08go!"),
        GO_NOTE.replace("— PeterNeumann x08go/ZJ", "— PeterNeumann x08go/ZJ\t"),
        GO_NOTE.replace("answer", "ans\x01wer"),
        GO_NOTE + "\n",
        GO_TEXT + "\n" + "— PeterNeumann AAAA\n",  # too short to hold a key ID and more
        b"\xff" + GO_NOTE.encode(),
        GO_TEXT + "\n" + "".join(f"— key{i} AAAAAAAA\n" for i in range(101)),
    ],
)
def test_malformed_notes_are_refused(message: str | bytes) -> None:
    with pytest.raises(LogVerificationFailed):
        open_note(message, [go_signer().verifier])


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "new\nline", "nbsp\u00a0"])
def test_key_names_have_no_space_or_plus(name: str) -> None:
    with pytest.raises(InvalidRequest, match="key name"):
        log_key(name)


@pytest.mark.parametrize("text", ["", "\n", "no newline", "a\x00b\n"])
def test_only_text_ending_in_a_newline_is_signed(text: str) -> None:
    with pytest.raises(InvalidRequest):
        sign_note(text, go_signer())


def test_a_note_may_hold_blank_lines_and_many_signatures() -> None:
    text = "first\n\nthird\n"
    keys = [log_key(f"k{i}", seed=str(i)) for i in range(16)]
    message = sign_note(text, *keys)
    note = open_note(message, [keys[3].verifier])
    assert note.text == text
    assert len(note.unverified) == 15
    line = NoteSignature("k", 1, b"sig").line
    assert line == "— k " + base64.b64encode(b"\x00\x00\x00\x01sig").decode() + "\n"
