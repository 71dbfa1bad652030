"""Signing keys: the signer seam, key stores, lifecycle and the keyring."""

from federation.keys.files import FileKeyStore
from federation.keys.keyring import Jwks, KeyChange, Keyring, KeyStore, Rotation
from federation.keys.lifecycle import KeyRecord, KeyState, KeyStatus
from federation.keys.signers import ALGORITHMS, LocalSigner, Signer

__all__ = [
    "ALGORITHMS",
    "FileKeyStore",
    "Jwks",
    "KeyChange",
    "KeyRecord",
    "KeyState",
    "KeyStatus",
    "KeyStore",
    "Keyring",
    "LocalSigner",
    "Rotation",
    "Signer",
]
