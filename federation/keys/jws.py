"""JWS compact serialization (RFC 7515) of JWTs, for the two algorithms we sign with.

A thin encoder on ``cryptography`` and ``orjson``: minting is on every run's start-up
path, and this encoder signs about twice as many tokens per second as a general JOSE
library on the same key (measured in the issuer-core note). What it produces is checked
in the tests by an independent verifier (PyJWT), never by this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from federation._internal.encoding import b64url

if TYPE_CHECKING:
    from federation.keys.signers import Signer


def header_segment(signer: Signer) -> bytes:
    """The encoded protected header, ``{"typ":"JWT","alg":...,"kid":...}`` as Oz sends it."""
    return b64url(orjson.dumps({"typ": "JWT", "alg": signer.alg, "kid": signer.kid}))


def encode(claims: Mapping[str, Any], signer: Signer, header: bytes | None = None) -> str:
    """Sign ``claims`` and return the compact JWS. ``header`` may be a cached segment."""
    return compact(header or header_segment(signer), b64url(orjson.dumps(claims)), signer)


def compact(header: bytes, payload: bytes, signer: Signer) -> str:
    """The compact JWS of two segments encoded already: ``header`` and ``payload``."""
    signing_input = header + b"." + payload
    return (signing_input + b"." + b64url(signer.sign(signing_input))).decode("ascii")
