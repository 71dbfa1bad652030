"""JWK thumbprints (RFC 7638), public JWKs, the JWS encoder checked with PyJWT, and
ES256 signatures from DER to ``r || s``."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc.jwk import ECKey, RSAKey
from jwt.types import Options

from federation._internal import encoding
from federation.keys import LocalSigner, jws
from federation.keys.jwk import JWK_MEMBERS, public_jwk, thumbprint
from federation.keys.signers import PrivateKey, algorithm_of, es256_raw, generate_private_key

# RFC 7638 §3.1: the example RSA key and its thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
    "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
    "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_E = "AQAB"
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_int(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")


@pytest.fixture(scope="module")
def es_key() -> PrivateKey:
    return generate_private_key("ES256")


@pytest.fixture(scope="module")
def rs_key() -> PrivateKey:
    return generate_private_key("RS256")


def test_thumbprint_matches_the_rfc_7638_vector() -> None:
    public = rsa.RSAPublicNumbers(b64url_int(RFC7638_E), b64url_int(RFC7638_N)).public_key()
    assert thumbprint(public) == RFC7638_THUMBPRINT


def test_thumbprint_agrees_with_joserfc_for_ec(es_key: PrivateKey) -> None:
    public = es_key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert thumbprint(public) == ECKey.import_key(public).thumbprint()


def test_thumbprint_agrees_with_joserfc_for_rsa(rs_key: PrivateKey) -> None:
    public = rs_key.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert thumbprint(public) == RSAKey.import_key(public).thumbprint()


def test_thumbprint_keeps_leading_zeros_of_coordinates() -> None:
    # The first private scalar whose public y has a leading zero byte: RFC 7518 wants
    # both coordinates as full 32-byte strings, and the thumbprint depends on it.
    public = ec.derive_private_key(43, ec.SECP256R1()).public_key()
    assert public.public_numbers().y < 2**248
    assert thumbprint(public) == ECKey.import_key(public).thumbprint()
    jwk = public_jwk(public, alg="ES256", kid="k")
    assert len(b64url_decode(jwk["y"])) == 32


def test_distinct_keys_have_distinct_thumbprints(es_key: PrivateKey) -> None:
    other = generate_private_key("ES256")
    assert thumbprint(es_key.public_key()) != thumbprint(other.public_key())


def test_public_ec_jwk_members(es_key: PrivateKey) -> None:
    public = es_key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    jwk = public_jwk(public, alg="ES256", kid="k1")
    assert set(jwk) == {"kty", "alg", "use", "kid", "x", "y", "crv"}
    assert set(jwk) <= set(JWK_MEMBERS)
    assert (jwk["kty"], jwk["alg"], jwk["use"], jwk["kid"], jwk["crv"]) == (
        "EC",
        "ES256",
        "sig",
        "k1",
        "P-256",
    )
    numbers = public.public_numbers()
    assert b64url_int(jwk["x"]) == numbers.x
    assert b64url_int(jwk["y"]) == numbers.y
    assert len(b64url_decode(jwk["x"])) == len(b64url_decode(jwk["y"])) == 32
    assert "d" not in jwk


def test_public_rsa_jwk_members(rs_key: PrivateKey) -> None:
    public = rs_key.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    jwk = public_jwk(public, alg="RS256", kid="k2")
    assert set(jwk) == {"kty", "alg", "use", "kid", "n", "e"}
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")
    assert jwk["e"] == "AQAB"
    assert b64url_int(jwk["n"]) == public.public_numbers().n
    for private_member in ("d", "p", "q", "dp", "dq", "qi"):
        assert private_member not in jwk


def test_public_jwk_is_usable_by_pyjwt(es_key: PrivateKey) -> None:
    signer = LocalSigner(es_key)
    jwk = public_jwk(signer.public_key, alg="ES256", kid=signer.kid)
    token = jws.encode({"sub": "s"}, signer)
    key = jwt.PyJWK.from_json(json.dumps(jwk))
    assert jwt.decode(token, key, algorithms=["ES256"]) == {"sub": "s"}


@pytest.mark.parametrize(
    ("bits", "ok"),
    [(1024, False), (2048, True)],
)
def test_rsa_keys_need_2048_bits(bits: int, ok: bool) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if ok:
        assert algorithm_of(key) == "RS256"
    else:
        with pytest.raises(ValueError, match="2048"):
            algorithm_of(key)


def test_only_p256_ec_keys() -> None:
    with pytest.raises(ValueError, match="P-256"):
        algorithm_of(ec.generate_private_key(ec.SECP384R1()))


def test_unknown_algorithm_cannot_be_generated() -> None:
    with pytest.raises(ValueError, match="unsupported algorithm"):
        generate_private_key("HS256")


# ---- JWS, verified by PyJWT ----------------------------------------------------------

CLAIMS: dict[str, Any] = {
    "iss": "https://issuer.example",
    "sub": "teams:t1/environment:e1",
    "aud": ["sts.amazonaws.com"],
    "iat": 1_795_867_200,
    "nbf": 1_795_867_200,
    "exp": 1_795_868_100,
    "jti": "abc",
    "teams": ["t1"],
}
NO_TIME_CHECKS: Options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}


def signer_for(alg: str, es_key: PrivateKey, rs_key: PrivateKey) -> LocalSigner:
    return LocalSigner(es_key if alg == "ES256" else rs_key)


def verify(token: str, signer: LocalSigner, alg: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token,
        signer.public_key,
        algorithms=[alg],
        audience="sts.amazonaws.com",
        issuer="https://issuer.example",
        options=NO_TIME_CHECKS,
    )
    return decoded


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_pyjwt_verifies_what_we_sign(alg: str, es_key: PrivateKey, rs_key: PrivateKey) -> None:
    signer = signer_for(alg, es_key, rs_key)
    assert signer.alg == alg
    token = jws.encode(CLAIMS, signer)
    assert verify(token, signer, alg) == CLAIMS
    header = jwt.get_unverified_header(token)
    assert header == {"typ": "JWT", "alg": alg, "kid": signer.kid}
    assert signer.kid == thumbprint(signer.public_key)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_cached_header_segment_gives_the_same_header(
    alg: str, es_key: PrivateKey, rs_key: PrivateKey
) -> None:
    signer = signer_for(alg, es_key, rs_key)
    token = jws.encode(CLAIMS, signer, jws.header_segment(signer))
    assert verify(token, signer, alg) == CLAIMS
    assert token.split(".")[0] == jws.encode(CLAIMS, signer).split(".")[0]


def test_header_and_payload_are_unpadded_base64url(es_key: PrivateKey) -> None:
    token = jws.encode({"sub": "a?>~"}, LocalSigner(es_key))
    assert token.count(".") == 2
    for segment in token.split("."):
        assert "=" not in segment
        assert "+" not in segment
        assert "/" not in segment


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_pyjwt_rejects_a_tampered_payload(alg: str, es_key: PrivateKey, rs_key: PrivateKey) -> None:
    signer = signer_for(alg, es_key, rs_key)
    header, _, signature = jws.encode(CLAIMS, signer).split(".")
    forged = {**CLAIMS, "sub": "teams:t1/environment:prod"}
    payload = encoding.b64url(json.dumps(forged).encode()).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        verify(f"{header}.{payload}.{signature}", signer, alg)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_pyjwt_rejects_a_tampered_signature(
    alg: str, es_key: PrivateKey, rs_key: PrivateKey
) -> None:
    signer = signer_for(alg, es_key, rs_key)
    header, payload, signature = jws.encode(CLAIMS, signer).split(".")
    raw = bytearray(b64url_decode(signature))
    raw[len(raw) // 2] ^= 0x01
    flipped = encoding.b64url(bytes(raw)).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        verify(f"{header}.{payload}.{flipped}", signer, alg)


def test_pyjwt_rejects_a_token_from_another_key(es_key: PrivateKey) -> None:
    token = jws.encode(CLAIMS, LocalSigner(generate_private_key("ES256")))
    with pytest.raises(jwt.InvalidSignatureError):
        verify(token, LocalSigner(es_key), "ES256")


def test_es256_signature_is_64_bytes_r_s(es_key: PrivateKey) -> None:
    signer = LocalSigner(es_key)
    public = signer.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for index in range(50):  # r or s with leading zeros must still fill 32 bytes
        token = jws.encode({**CLAIMS, "jti": str(index)}, signer)
        signing_input, _, segment = token.rpartition(".")
        signature = b64url_decode(segment)
        assert len(signature) == 64
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        # raises InvalidSignature unless the halves are r and s of the signature
        public.verify(encode_dss_signature(r, s), signing_input.encode(), ec.ECDSA(hashes.SHA256()))


def test_rs256_signature_is_the_modulus_size(rs_key: PrivateKey) -> None:
    token = jws.encode(CLAIMS, LocalSigner(rs_key))
    assert len(b64url_decode(token.split(".")[2])) == 256


# ---- DER to r || s ---------------------------------------------------------------------

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# Numbers at each length boundary of a DER INTEGER: short ones (1 to 31 bytes), a top
# byte of zero once encoded (2**247 to 2**248: 32 bytes, led by 00), 33 bytes (top bit
# set: led by 00), and the largest r or s there is.
EDGES = (
    1,
    0x7F,
    0x80,
    0xFF,
    0x100,
    2**247 - 1,
    2**247,
    2**248 - 1,
    2**248,
    2**255 - 1,
    2**255,
    P256_ORDER - 1,
)


def reference_raw(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_es256_raw_agrees_with_cryptography_on_many_signatures(es_key: PrivateKey) -> None:
    assert isinstance(es_key, ec.EllipticCurvePrivateKey)
    lengths = set()
    for index in range(6000):
        der = es_key.sign(index.to_bytes(4, "big"), ec.ECDSA(hashes.SHA256()))
        assert es256_raw(der) == reference_raw(der), der.hex()
        lengths.add((der[3], der[5 + der[3]]))
    # both INTEGER sizes of r and of s came up, and (with near certainty) a short one
    assert {(32, 32), (32, 33), (33, 32), (33, 33)} <= lengths
    assert any(r < 32 or s < 32 for r, s in lengths)


@pytest.mark.parametrize("r", EDGES)
@pytest.mark.parametrize("s", EDGES)
def test_es256_raw_at_every_integer_length(r: int, s: int) -> None:
    der = encode_dss_signature(r, s)
    assert es256_raw(der) == reference_raw(der) == r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30\x06\x02\x01\x01\x02\x01",  # truncated
        bytes(70),
        b"\x30\x44\x02\x20" + b"\x01" * 32 + b"\x04\x20" + b"\x01" * 32,  # s: no INTEGER
        b"\x30\x45\x02\x20" + b"\x01" * 32 + b"\x02\x20" + b"\x01" * 33,  # s: 33 bytes, not 32
    ],
)
def test_es256_raw_refuses_what_is_no_signature(der: bytes) -> None:
    with pytest.raises(ValueError, match="asn1"):
        es256_raw(der)


@pytest.mark.parametrize("size", range(0, 70))
def test_b64url_is_unpadded_urlsafe_base64(size: int) -> None:
    data = bytes((index * 37 + size) % 256 for index in range(size))
    assert encoding.b64url(data) == base64.urlsafe_b64encode(data).rstrip(b"=")
