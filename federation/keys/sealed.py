"""Private keys sealed with the key-encryption key: the ``database`` key store."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization

from federation.errors import ConfigurationError
from federation.keys.database import NewKey
from federation.keys.kek import KeyEncryptionKey
from federation.keys.signers import LocalSigner, Signer, generate_private_key
from federation.store.models import SigningKey


class SealedMaterial:
    """Keys generated here; their PKCS #8 form sealed (AES-256-GCM) before it is stored."""

    backend = "database"

    def __init__(self, kek: KeyEncryptionKey) -> None:
        self.kek = kek

    def generate(self, alg: str) -> NewKey:
        private_key = generate_private_key(alg)
        signer = LocalSigner(private_key)
        der = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return NewKey(
            signer=signer,
            public_key=_public_der(signer),
            sealed_private_key=self.kek.seal(der, kid=signer.kid),
        )

    def open(self, row: SigningKey) -> Signer:
        if row.sealed_private_key is None:
            raise ConfigurationError(f"signing key {row.kid} has no sealed private key")
        der = self.kek.open(row.sealed_private_key, kid=row.kid)
        signer = LocalSigner(serialization.load_der_private_key(der, password=None))  # type: ignore[arg-type]
        if signer.kid != row.kid:
            raise ConfigurationError(f"signing key {row.kid} does not match its sealed key")
        return signer

    def location(self, row: SigningKey) -> str:
        return "database (sealed with FEDERATION_KEK)"

    def discard(self, new: NewKey) -> None:
        """Nothing outlives a key that was never stored."""


def _public_der(signer: Signer) -> bytes:
    return signer.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
