"""The key-encryption key (KEK) that seals private keys kept in the database.

AES-256-GCM, a fresh 96-bit nonce per seal, and the key's ``kid`` as associated data:
a sealed key cannot be swapped onto another row, and a wrong KEK fails loudly instead
of yielding garbage. The KEK comes from the environment (``FEDERATION_KEK``), never
from the database, so a copy of the database alone signs nothing.
"""

from __future__ import annotations

import binascii
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from federation._internal.encoding import b64url_decode, b64url_text
from federation.errors import ConfigurationError

KEK_BYTES = 32
_NONCE_BYTES = 12
_CONTEXT = b"federation signing key "


def new_kek() -> str:
    """A fresh KEK, as ``FEDERATION_KEK`` takes it (base64url, 256 bits)."""
    return b64url_text(secrets.token_bytes(KEK_BYTES))


class KeyEncryptionKey:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEK_BYTES:
            raise ConfigurationError(f"FEDERATION_KEK must hold {KEK_BYTES} bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_text(cls, text: str) -> KeyEncryptionKey:
        try:
            key = b64url_decode(text.strip())
        except (ValueError, binascii.Error):
            key = b""
        if len(key) != KEK_BYTES:
            # NOTE: the value is never echoed.
            raise ConfigurationError(
                f"FEDERATION_KEK must be {KEK_BYTES} bytes in base64url; create one with "
                "`federation keys new-kek`"
            )
        return cls(key)

    def seal(self, plaintext: bytes, *, kid: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, _CONTEXT + kid.encode())

    def open(self, sealed: bytes, *, kid: str) -> bytes:
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext, _CONTEXT + kid.encode())
        except (InvalidTag, ValueError) as exc:
            raise ConfigurationError(
                f"FEDERATION_KEK does not open signing key {kid}: it is not the key-encryption "
                "key these keys were sealed with"
            ) from exc
