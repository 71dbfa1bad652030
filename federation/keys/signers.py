"""Signers: the seam between minting a token and the private key that signs it.

A :class:`Signer` turns a JWS signing input into signature bytes in JWS form (for ES256,
the 64-byte ``r || s`` of RFC 7518 §3.4, not DER). The private key never leaves it.
"""

from __future__ import annotations

from typing import Protocol, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from federation.keys.jwk import PublicKey, thumbprint

# NOTE: built once: a new one per token cost a tenth of the signature
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())

ALGORITHMS = ("ES256", "RS256")
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class Signer(Protocol):
    @property
    def kid(self) -> str: ...

    @property
    def alg(self) -> str: ...

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, signing_input: bytes) -> bytes:
        """The JWS signature over ``signing_input``."""
        ...


def algorithm_of(key: PrivateKey | PublicKey) -> str:
    """ES256 for P-256 keys, RS256 for RSA keys of at least 2048 bits."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ES256"
        raise ValueError(f"EC keys must be on P-256, not {key.curve.name}")
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size >= 2048:
            return "RS256"
        raise ValueError(f"RSA keys must have at least 2048 bits, not {key.key_size}")
    raise ValueError(f"unsupported key type {type(key).__name__}")


def generate_private_key(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported algorithm {alg!r}; use one of {', '.join(ALGORITHMS)}")


class KeyIdentity:
    """What every signer derives from its public key: algorithm and ``kid``."""

    def __init__(self, public_key: PublicKey) -> None:
        self._public = public_key
        self._alg = algorithm_of(public_key)
        self._kid = thumbprint(public_key)

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def alg(self) -> str:
        return self._alg

    @property
    def public_key(self) -> PublicKey:
        return self._public


class LocalSigner(KeyIdentity):
    """Signs with a private key held in this process."""

    def __init__(self, private_key: PrivateKey) -> None:
        super().__init__(private_key.public_key())
        self._ec = private_key if isinstance(private_key, ec.EllipticCurvePrivateKey) else None
        self._key = private_key

    def sign(self, signing_input: bytes) -> bytes:
        if self._ec is not None:  # NOTE: decided once: an ABC isinstance costs µs a token
            return es256_raw(self._ec.sign(signing_input, _ECDSA_SHA256))
        return cast(rsa.RSAPrivateKey, self._key).sign(
            signing_input, padding.PKCS1v15(), hashes.SHA256()
        )


def es256_raw(der: bytes) -> bytes:
    """The JWS form (RFC 7518 §3.4) of a DER ECDSA P-256 signature: ``r || s``, each
    a 32-byte big-endian number.

    DER is ``30 len 02 rlen r 02 slen s``, each INTEGER in as few bytes as it takes,
    with a zero byte in front when its top bit is set. On P-256, r and s are below
    2**256, so an INTEGER of 32 or 33 bytes ends with the 32 bytes of its number: in
    all but about one signature in 256, checking that layout and taking two slices
    gives ``r || s`` where ``decode_dss_signature`` builds two ints (a µs a token).
    A shorter r or s, or anything else, goes to it.
    """
    size = len(der)
    if 70 <= size <= 72 and der[2] == 2:
        r_end = 4 + der[3]
        if 36 <= r_end <= 37 and der[r_end] == 2 and 32 <= der[r_end + 1] == size - r_end - 2 <= 33:
            return der[r_end - 32 : r_end] + der[-32:]
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
