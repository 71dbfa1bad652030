"""C2SP ``tlog-cosignature`` v1 with Ed25519: a witness's timestamped signature on a
checkpoint, saying that as of that time this is the largest tree of the log it has seen
and checked to be consistent with every earlier one.

A cosignature is a note signature line like any other (see
:mod:`~federation.transparency.notes`), with signature type ``0x04``:

- key ID: ``SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]``;
- signature bytes: an 8-byte big-endian timestamp (seconds since the epoch, at most
  2**63 - 1) followed by the 64-byte Ed25519 signature of the message
  ``cosignature/v1\\ntime <timestamp in decimal>\\n`` followed by the checkpoint's
  note text (its final newline included, its signature lines not);
- verifier key: ``<name>+<key ID in 8 hex digits>+<base64(0x04 || public key)>``;
- private key (as ``github.com/transparency-dev/formats/note`` reads it):
  ``PRIVATE+KEY+<name>+<key ID>+<base64(0x04 || 32-byte seed)>``.

The signed message does not commit to the witness's name, so one key must never serve
two witness names. A cosignature is not the log's signature: a reader still needs the
log's key to trust a checkpoint (:func:`~federation.transparency.open_checkpoint`
insists on it), and asks for a witness's cosignature on top, so that a log cannot show
it a tree the witnesses never saw (a split view).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from federation.clock import Clock
from federation.errors import InvalidRequest, LogVerificationFailed
from federation.transparency.notes import (
    ED25519,
    Ed25519NoteSigner,
    Ed25519NoteVerifier,
    Note,
    NoteSignature,
    NoteVerifier,
    check_key_name,
    key_id,
)

COSIGNATURE_V1 = 0x04  # the signature type byte of timestamped Ed25519 cosignatures
TIMESTAMP_SIZE = 8
SIGNATURE_SIZE = 64
MAX_TIMESTAMP = 2**63 - 1
_HEADER = b"cosignature/v1\n"
_PRIVATE = "PRIVATE+KEY+"
_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")


def cosigned_message(timestamp: int, text: str) -> bytes:
    """What a cosignature at ``timestamp`` signs: ``cosignature/v1``, ``time <timestamp>``,
    then the note text."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise InvalidRequest(f"a cosignature's time is 0 to {MAX_TIMESTAMP}")
    return _HEADER + f"time {timestamp}\n".encode("ascii") + text.encode("utf-8")


@dataclass(frozen=True)
class Ed25519CosignatureVerifier(Ed25519NoteVerifier):
    """The public half of a witness's Ed25519 cosigning key (signature type ``0x04``):
    a :class:`~federation.transparency.NoteVerifier` for ``open_note``."""

    signature_type: ClassVar[int] = COSIGNATURE_V1

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (timestamp and Ed25519 signature) cosigns the note text
        ``message``."""
        if len(signature) != TIMESTAMP_SIZE + SIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError:
            return False
        signed = cosigned_message(timestamp, text)
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                signature[TIMESTAMP_SIZE:], signed
            )
        except InvalidSignature:
            return False
        return True


def parse_witness_key(text: str) -> Ed25519CosignatureVerifier:
    """The witness key written ``<name>+<key ID>+<base64(0x04 || public key)>``;
    :class:`InvalidRequest` when it is not one, or its key ID does not match."""
    name, hex_id, raw = _split_key(text.strip(), "witness key")
    if raw[:1] == bytes([ED25519]):
        raise InvalidRequest(
            "that is a note signing key (type 0x01), such as a log's key, not a witness's "
            "cosignature key (type 0x04)"
        )
    if len(raw) != 33 or raw[0] != COSIGNATURE_V1:
        raise InvalidRequest("not an Ed25519 witness key (type 0x04)")
    verifier = Ed25519CosignatureVerifier(name, raw[1:])
    if verifier.key_id != hex_id:
        raise InvalidRequest("the witness key's ID does not match its key")
    return verifier


class Ed25519CosignatureSigner(Ed25519NoteSigner):
    """A witness's Ed25519 cosigning key held in this process: a
    :class:`~federation.transparency.NoteSigner` whose signatures carry the time of
    ``clock`` when they are made."""

    verifier_type = Ed25519CosignatureVerifier

    def __init__(self, name: str, private_key: Ed25519PrivateKey, clock: Clock) -> None:
        super().__init__(name, private_key)
        self._clock = clock

    def sign(self, message: bytes) -> bytes:
        """The timestamp (now, in whole seconds) and the signature of ``message`` (a
        checkpoint's note text) under it."""
        # NOTE: the time is truncated, never rounded up: a cosignature must not claim a
        # moment that has not come yet (readers may reject a time in the future).
        timestamp = int(self._clock.now().timestamp())
        signed = cosigned_message(timestamp, message.decode("utf-8"))
        return timestamp.to_bytes(TIMESTAMP_SIZE, "big") + self._key.sign(signed)

    @property
    def private_key_text(self) -> str:
        """``PRIVATE+KEY+<name>+<key ID>+<base64(0x04 || seed)>``: a secret, for the key
        file only."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes([COSIGNATURE_V1]) + seed).decode("ascii")
        return f"{_PRIVATE}{self.name}+{self.key_id:08x}+{encoded}"


def generate_witness_key(name: str, clock: Clock) -> Ed25519CosignatureSigner:
    """A new witness key named ``name`` (a schema-less URL, such as
    ``witness.example.org/w1``)."""
    return Ed25519CosignatureSigner(name, Ed25519PrivateKey.generate(), clock)


def parse_witness_private_key(text: str, clock: Clock) -> Ed25519CosignatureSigner:
    """The witness key written ``PRIVATE+KEY+<name>+<key ID>+<base64(type || seed)>``,
    of type 0x04 (or 0x01, a Go ``note.GenerateKey`` key, which then cosigns as type
    0x04, as the transparency-dev witness does); :class:`InvalidRequest` otherwise. The
    message never quotes the text: it is a secret."""
    text = text.strip()
    if not text.startswith(_PRIVATE):
        raise InvalidRequest("not a witness private key (PRIVATE+KEY+<name>+<id>+<key>)")
    name, hex_id, raw = _split_key(text[len(_PRIVATE) :], "witness private key")
    if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
        raise InvalidRequest("not an Ed25519 witness private key")
    signer = Ed25519CosignatureSigner(name, Ed25519PrivateKey.from_private_bytes(raw[1:]), clock)
    if key_id(name, raw[0], signer.verifier.public_key) != hex_id:
        raise InvalidRequest("the witness private key's ID does not match its key")
    return signer


@dataclass(frozen=True)
class Cosignature:
    """A witness's verified cosignature: whose, and when it was made."""

    name: str
    key_id: int
    timestamp: int

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)

    @classmethod
    def of(cls, signature: NoteSignature) -> Cosignature:
        """The cosignature in a signature line ``open_note`` verified with an
        :class:`Ed25519CosignatureVerifier`."""
        if len(signature.signature) != TIMESTAMP_SIZE + SIGNATURE_SIZE:
            raise LogVerificationFailed(f"the signature by {signature.name} is no cosignature")
        timestamp = int.from_bytes(signature.signature[:TIMESTAMP_SIZE], "big")
        return cls(signature.name, signature.key_id, timestamp)


def cosignatures(note: Note, verifiers: Sequence[NoteVerifier]) -> tuple[Cosignature, ...]:
    """The cosignatures by ``verifiers`` among the signatures that verified when ``note``
    was opened (with those verifiers among its keys)."""
    wanted = {(v.name, v.key_id) for v in verifiers}
    return tuple(Cosignature.of(s) for s in note.signatures if (s.name, s.key_id) in wanted)


def require_cosignature(note: Note, verifier: NoteVerifier) -> Cosignature:
    """The cosignature by ``verifier`` on ``note`` (opened with it among its keys);
    :class:`LogVerificationFailed` when the witness did not cosign it."""
    found = cosignatures(note, [verifier])
    if not found:
        raise LogVerificationFailed(f"the checkpoint carries no cosignature by {verifier.name}")
    return found[0]


def _split_key(text: str, what: str) -> tuple[str, int, bytes]:
    """``<name>+<hex ID>+<base64>`` as its name, ID and decoded key bytes."""
    name, _, rest = text.partition("+")
    hex_id, _, encoded = rest.partition("+")
    try:
        raw = base64.b64decode(encoded, validate=True)
        check_key_name(name)
    except (binascii.Error, ValueError, InvalidRequest):
        raise InvalidRequest(f"not a {what} (<name>+<key ID>+<base64 key>)") from None
    if not _KEY_ID.fullmatch(hex_id):
        raise InvalidRequest(f"not a {what}: its key ID is 8 hex digits")
    return name, int(hex_id, 16), raw
