"""C2SP ``signed-note``: text signed by one or more keys, with Ed25519 note keys.

A signed note is its text (UTF-8, ending in a newline), a blank line, then one line per
signature: ``— <key name> <base64(key ID || signature)>`` (an em dash, U+2014). The key
ID of an Ed25519 key is the first four bytes of ``SHA-256(key name || 0x0A || 0x01 ||
public key)``, read big-endian, and a verifier key is written
``<key name>+<key ID in 8 hex digits>+<base64(0x01 || public key)>``, as Go's
``golang.org/x/mod/sumdb/note`` writes and reads it. Base64 is the standard alphabet,
padded, throughout.

Opening a note ignores signatures by keys it does not know (so a log key can rotate and
witnesses can cosign), rejects the whole note if a known key's signature fails, and
requires at least one known key's signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from federation.errors import InvalidRequest, LogVerificationFailed

ED25519 = 0x01  # the signature type byte of Ed25519 note keys
MAX_SIGNATURES = 100  # the specification asks verifiers to accept at least 16
_DASH = "\u2014 "
_SEPARATOR = "\n\n"
_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")


class NoteSigner(Protocol):
    """A key that signs notes: a local Ed25519 key, or one a key service holds."""

    @property
    def name(self) -> str:
        """The key name (for a log: its checkpoint origin)."""
        ...

    @property
    def key_id(self) -> int:
        """The 32-bit key ID that signature lines carry."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The signature of ``message`` (the note text)."""
        ...


class NoteVerifier(Protocol):
    """A key that checks the signatures of notes."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the key ID) signs ``message``."""
        ...


def check_key_name(name: str) -> str:
    """``name`` if it can name a note key: not empty, no space, no ``+``, no control
    character; :class:`InvalidRequest` otherwise."""
    if not name or "+" in name or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise InvalidRequest("a note key name is not empty and has no space, + or control")
    return name


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` as a big-endian integer."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


@dataclass(frozen=True)
class Ed25519NoteVerifier:
    """The public half of an Ed25519 note key (signature type ``0x01``; a subclass
    names another type that signs with Ed25519, such as cosignatures)."""

    name: str
    public_key: bytes
    signature_type: ClassVar[int] = ED25519

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.public_key) != 32:
            raise InvalidRequest("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.signature_type, self.public_key)

    @property
    def verifier_key(self) -> str:
        """``<name>+<key ID>+<base64(type || public key)>``: what verifiers pin."""
        encoded = base64.b64encode(bytes([self.signature_type]) + self.public_key)
        return f"{self.name}+{self.key_id:08x}+{encoded.decode('ascii')}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_verifier_key(text: str) -> Ed25519NoteVerifier:
    """The verifier written ``<name>+<key ID>+<base64(0x01 || public key)>``;
    :class:`InvalidRequest` when it is not one, or its key ID does not match."""
    name, _, rest = text.partition("+")
    hex_id, _, encoded = rest.partition("+")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("not a note verifier key") from None
    if not _KEY_ID.fullmatch(hex_id) or len(raw) != 33 or raw[0] != ED25519:
        raise InvalidRequest("not an Ed25519 note verifier key")
    verifier = Ed25519NoteVerifier(check_key_name(name), raw[1:])
    if verifier.key_id != int(hex_id, 16):
        raise InvalidRequest("the note verifier key's ID does not match its key")
    return verifier


class Ed25519NoteSigner:
    """An Ed25519 note key held in this process."""

    verifier_type: ClassVar[type[Ed25519NoteVerifier]] = Ed25519NoteVerifier

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = self.verifier_type(check_key_name(name), public)

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def key_id(self) -> int:
        return self.verifier.key_id

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key's name and ID, and the signature bytes."""

    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        """``— <name> <base64(key ID || signature)>`` and a newline."""
        raw = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_DASH}{self.name} {base64.b64encode(raw).decode('ascii')}\n"


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures that verified, and those by keys the
    reader did not know (kept, unchecked, so a note can be re-signed or cosigned)."""

    text: str
    signatures: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...] = ()


def sign_note(text: str, *signers: NoteSigner, keep: Sequence[NoteSignature] = ()) -> str:
    """The signed note of ``text`` with a signature by each of ``signers``, after the
    signatures in ``keep`` (those of a note being cosigned) that they do not replace."""
    _check_text(text, InvalidRequest)
    if not signers and not keep:
        raise InvalidRequest("a signed note has at least one signature")
    message = text.encode("utf-8")
    new = [NoteSignature(s.name, s.key_id, s.sign(message)) for s in signers]
    replaced = {(s.name, s.key_id) for s in new}
    old = [s for s in keep if (s.name, s.key_id) not in replaced]
    for signature in (*old, *new):
        check_key_name(signature.name)
    return text + "\n" + "".join(s.line for s in (*old, *new))


def open_note(message: str | bytes, verifiers: Sequence[NoteVerifier]) -> Note:
    """The note in ``message``, once a signature by one of ``verifiers`` verified;
    :class:`LogVerificationFailed` otherwise."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise LogVerificationFailed("the note is not UTF-8") from None
    split = message.rfind(_SEPARATOR)
    if split < 0:
        raise LogVerificationFailed("the note has no signature block")
    text, block = message[: split + 1], message[split + 2 :]
    _check_text(message, LogVerificationFailed)
    if not block.endswith("\n"):
        raise LogVerificationFailed("the note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise LogVerificationFailed(f"the note has more than {MAX_SIGNATURES} signatures")
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: dict[tuple[str, int], NoteSignature] = {}
    unverified: dict[str, NoteSignature] = {}
    for line in lines:
        signature = _parse_line(line)
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            unverified.setdefault(line, signature)
        elif (signature.name, signature.key_id) not in verified:
            # NOTE: a known key's failing signature rejects the whole note, as the
            # specification recommends: the note is not what that key signed.
            if not verifier.verify(text.encode("utf-8"), signature.signature):
                raise LogVerificationFailed(f"the signature by {signature.name} does not verify")
            verified[(signature.name, signature.key_id)] = signature
    if not verified:
        raise LogVerificationFailed("the note has no signature by a key this reader trusts")
    return Note(text, tuple(verified.values()), tuple(unverified.values()))


def _parse_line(line: str) -> NoteSignature:
    if not line.startswith(_DASH):
        raise LogVerificationFailed("a note signature line starts with an em dash")
    name, _, encoded = line[len(_DASH) :].partition(" ")
    try:
        raw = base64.b64decode(encoded, validate=True)
        check_key_name(name)
    except (binascii.Error, ValueError, InvalidRequest):
        raise LogVerificationFailed("a note signature line is malformed") from None
    if len(raw) < 5:
        raise LogVerificationFailed("a note signature line is malformed")
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def _check_text(text: str, error: type[InvalidRequest]) -> None:
    """A note's text ends in a newline and holds no control character but newlines."""
    if not text.endswith("\n") or text == "\n":
        raise error("a note's text is not empty and ends with a newline")
    if any(ch < " " and ch != "\n" for ch in text):
        raise error("a note holds no control character but newlines")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise error("a note's text is not valid Unicode") from None
