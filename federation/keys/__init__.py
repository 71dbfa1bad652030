"""Signing keys: the signer seam, key stores, lifecycle and the keyring."""

from federation.keys.files import FileKeyStore
from federation.keys.keyring import Jwks, Keyring, KeyStore
from federation.keys.lifecycle import KeyRecord, KeyState, KeyStatus
from federation.keys.signers import ALGORITHMS, LocalSigner, Signer

__all__ = [
    "ALGORITHMS",
    "FileKeyStore",
    "Jwks",
    "KeyRecord",
    "KeyState",
    "KeyStatus",
    "KeyStore",
    "Keyring",
    "LocalSigner",
    "Signer",
]
