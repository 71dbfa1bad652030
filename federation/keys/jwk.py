"""Public JWKs (RFC 7517/7518) and their RFC 7638 thumbprints."""

from __future__ import annotations

import hashlib
import json

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from federation._internal.encoding import b64url_text

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

# GCP accepts an uploaded JWKS only with these members; we publish no others.
JWK_MEMBERS = ("kty", "alg", "use", "kid", "n", "e", "x", "y", "crv")


def _uint(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_text(value.to_bytes(length, "big"))


def key_members(public_key: PublicKey) -> dict[str, str]:
    """The members that define the key (the input of its thumbprint)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError(f"unsupported curve {public_key.curve.name}; only P-256 is used")
        numbers = public_key.public_numbers()
        return {"crv": "P-256", "kty": "EC", "x": _uint(numbers.x, 32), "y": _uint(numbers.y, 32)}
    if isinstance(public_key, rsa.RSAPublicKey):
        rsa_numbers = public_key.public_numbers()
        return {"e": _uint(rsa_numbers.e), "kty": "RSA", "n": _uint(rsa_numbers.n)}
    raise ValueError(f"unsupported key type {type(public_key).__name__}")


def thumbprint(public_key: PublicKey) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace."""
    canonical = json.dumps(key_members(public_key), sort_keys=True, separators=(",", ":"))
    return b64url_text(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(public_key: PublicKey, *, alg: str, kid: str) -> dict[str, str]:
    jwk = {"kid": kid, "alg": alg, "use": "sig", **key_members(public_key)}
    return {name: jwk[name] for name in JWK_MEMBERS if name in jwk}
