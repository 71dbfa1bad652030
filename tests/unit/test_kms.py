"""AWS KMS signing keys (the ``aws-kms`` key store) against moto in-process.

Tokens are verified by PyJWT with the public key KMS itself hands out (``GetPublicKey``),
never with our code. Failures moto cannot produce (it signs with disabled keys and has
no throttling) come from a narrow patch of moto's backend or from botocore's Stubber,
so that they still travel through botocore's real error parsing.
"""

from __future__ import annotations

import base64
import socket
import time
from datetime import datetime
from typing import Any

import jwt
import orjson
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc.jwk import ECKey, RSAKey
from moto.core.exceptions import JsonRESTError
from moto.kms.models import KmsBackend
from sqlalchemy import select

from federation._internal import encoding
from federation.clock import ManualClock
from federation.errors import (
    ConfigurationError,
    FederationError,
    InternalError,
    ResourceUnavailable,
)
from federation.keys import jws
from federation.keys.database import DatabaseKeyStore
from federation.keys.jwk import PublicKey, thumbprint
from federation.keys.kms import MAX_SIGNING_INPUT, KmsMaterial, kms_client
from federation.keys.signers import Signer, generate_private_key
from federation.store import Store
from federation.store.models import SigningKey
from tests.conftest import START
from tests.unit.conftest import REGION, SECRET

CLAIMS = {"iss": "https://issuer.example", "sub": "run:42", "aud": "sts.amazonaws.com"}
MISSING_ARN = f"arn:aws:kms:{REGION}:123456789012:key/00000000-0000-4000-8000-000000000000"
KEY_SPECS = {"ES256": "ECC_NIST_P256", "RS256": "RSA_2048"}


pytestmark = pytest.mark.usefixtures("fake_aws")


@pytest.fixture
def kms_enforces_key_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2 signs with disabled keys and keys pending deletion; real KMS answers
    DisabledException and KMSInvalidStateException. Teach moto's backend that much."""
    original = KmsBackend.sign

    def sign(self: KmsBackend, key_id: str, message: bytes, signing_algorithm: str) -> Any:
        key = self.describe_key(key_id)
        if key.key_state == "Disabled":
            raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")
        if key.key_state == "PendingDeletion":
            raise JsonRESTError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
        return original(self, key_id, message, signing_algorithm)

    monkeypatch.setattr(KmsBackend, "sign", sign)


class Recording:
    """A KMS client that records every operation asked of it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.client, name)


class NoKms:
    """A KMS client that fails the test when anything is asked of it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"KMS was called ({name})")


def kms_public_key(kms: Any, key_id: str) -> PublicKey:
    """The public key as KMS hands it out, parsed by ``cryptography`` alone."""
    key = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    return key


def joserfc_kid(public: PublicKey) -> str:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ECKey.import_key(public).thumbprint()
    return RSAKey.import_key(public).thumbprint()


def verified(token: str, public: PublicKey, alg: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, public, algorithms=[alg], audience=CLAIMS["aud"])
    return claims


def row_for(public: PublicKey, kms_key_id: str | None = MISSING_ARN, **changes: Any) -> SigningKey:
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    alg = "ES256" if isinstance(public, ec.EllipticCurvePublicKey) else "RS256"
    fields: dict[str, Any] = {
        "kid": thumbprint(public),
        "alg": alg,
        "backend": "aws-kms",
        "public_key": der,
        "sealed_private_key": None,
        "kms_key_id": kms_key_id,
        "created_at": START,
        "activates_at": START,
    }
    return SigningKey(**{**fields, **changes})


def jws_signature(token: str) -> bytes:
    segment = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def local_public(alg: str) -> PublicKey:
    return generate_private_key(alg).public_key()


# ---- keys made by KMS sign tokens that PyJWT verifies --------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_generated_key_signs_tokens_pyjwt_verifies(kms: Any, alg: str) -> None:
    made = KmsMaterial(kms).generate(alg)

    assert made.sealed_private_key is None
    assert made.kms_key_id is not None
    metadata = kms.describe_key(KeyId=made.kms_key_id)["KeyMetadata"]
    assert metadata["Arn"] == made.kms_key_id
    assert (metadata["KeySpec"], metadata["KeyUsage"]) == (KEY_SPECS[alg], "SIGN_VERIFY")
    assert "federation" in metadata["Description"]
    tags = kms.list_resource_tags(KeyId=metadata["KeyId"])["Tags"]
    assert {"TagKey": "federation:alg", "TagValue": alg} in tags
    assert made.public_key == kms.get_public_key(KeyId=made.kms_key_id)["PublicKey"]

    public = kms_public_key(kms, made.kms_key_id)
    token = jws.encode(CLAIMS, made.signer)
    assert verified(token, public, alg) == CLAIMS
    assert jwt.get_unverified_header(token) == {"typ": "JWT", "alg": alg, "kid": made.signer.kid}
    assert made.signer.kid == joserfc_kid(public)


def test_es256_signatures_are_r_s_even_when_kms_der_has_a_short_integer() -> None:
    """KMS answers DER, whose integers drop leading zero bytes; JWS needs 32 + 32 bytes.
    A real signature with a short ``r`` is served through botocore's Stubber."""
    private = generate_private_key("ES256")
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    client = kms_client(REGION, None)
    signer = KmsMaterial(client).open(row_for(private.public_key(), MISSING_ARN))
    signing_input = jws.header_segment(signer) + b"." + encoding.b64url(orjson.dumps(CLAIMS))
    while True:
        der = private.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        if decode_dss_signature(der)[0] < 2**248:
            break

    with Stubber(client) as stub:
        stub.add_response(
            "sign",
            {"KeyId": MISSING_ARN, "Signature": der, "SigningAlgorithm": "ECDSA_SHA_256"},
            expected_params={
                "KeyId": MISSING_ARN,
                "Message": signing_input,
                "MessageType": "RAW",
                "SigningAlgorithm": "ECDSA_SHA_256",
            },
        )
        token = jws.encode(CLAIMS, signer)
        stub.assert_no_pending_responses()

    assert len(jws_signature(token)) == 64
    assert verified(token, private.public_key(), "ES256") == CLAIMS


def test_the_4096_byte_kms_limit_is_checked_before_calling_kms(kms: Any) -> None:
    made = KmsMaterial(kms).generate("ES256")
    assert made.kms_key_id is not None
    recording = Recording(kms)
    signer = KmsMaterial(recording).open(row_for(made.signer.public_key, made.kms_key_id))

    largest = b"a" * MAX_SIGNING_INPUT
    r_s = signer.sign(largest)
    der = encode_dss_signature(int.from_bytes(r_s[:32], "big"), int.from_bytes(r_s[32:], "big"))
    public = kms_public_key(kms, made.kms_key_id)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, largest, ec.ECDSA(hashes.SHA256()))
    assert recording.calls == ["sign"]

    with pytest.raises(InternalError, match="4097 bytes") as raised:
        signer.sign(largest + b"a")
    assert raised.value.retryable is False
    assert recording.calls == ["sign"]


# ---- the database keeps the ARN and public key, never a private key -----------------


def test_database_key_store_round_trip(kms: Any, store: Store, clock: ManualClock) -> None:
    now: datetime = clock.now()
    keys = DatabaseKeyStore(store, KmsMaterial(kms))
    created = [keys.create(alg, created_at=now, activates_at=now) for alg in ("ES256", "RS256")]

    with store.session() as session:
        rows = session.scalars(select(SigningKey).where(SigningKey.backend == "aws-kms")).all()
        kept = {
            row.kid: (row.alg, row.kms_key_id, row.public_key, row.sealed_private_key)
            for row in rows
        }
    assert set(kept) == {key.signer.kid for key in created}
    for alg, arn, der, sealed in kept.values():
        assert sealed is None
        assert arn is not None
        assert arn.startswith(f"arn:aws:kms:{REGION}:")
        assert der == kms.get_public_key(KeyId=arn)["PublicKey"]
        assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeySpec"] == KEY_SPECS[alg]

    # Another replica loads them: no KMS call at all, any access to the client fails.
    offline = DatabaseKeyStore(store, KmsMaterial(NoKms())).load()
    assert {key.record.kid: key.signer.alg for key in offline} == {
        kid: alg for kid, (alg, *_) in kept.items()
    }

    recording = Recording(kms)
    loaded = DatabaseKeyStore(store, KmsMaterial(recording)).load()
    assert recording.calls == []
    for key in loaded:
        alg, arn, _, _ = kept[key.record.kid]
        assert key.record.location == f"aws-kms {arn}"
        assert arn is not None
        token = jws.encode(CLAIMS, key.signer)
        assert verified(token, kms_public_key(kms, arn), alg) == CLAIMS
        assert jwt.get_unverified_header(token)["kid"] == joserfc_kid(kms_public_key(kms, arn))
    assert recording.calls == ["sign", "sign"]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"kid": "not-the-thumbprint"}, "does not match"),
        ({"alg": "RS256"}, "does not match"),
        ({"kms_key_id": None}, "no AWS KMS key id"),
        ({"public_key": b"\x30\x03garbage"}, "no usable public key"),
    ],
)
def test_open_refuses_inconsistent_rows_without_calling_kms(
    changes: dict[str, Any], match: str
) -> None:
    row = row_for(local_public("ES256"), **changes)
    with pytest.raises(ConfigurationError, match=match):
        KmsMaterial(NoKms()).open(row)


def test_a_row_naming_another_kms_key_fails_instead_of_signing(kms: Any) -> None:
    material = KmsMaterial(kms)
    published, other = material.generate("ES256"), material.generate("ES256")
    assert other.kms_key_id is not None
    signer = material.open(row_for(published.signer.public_key, other.kms_key_id))

    with pytest.raises(ConfigurationError, match="does not verify") as raised:
        jws.encode(CLAIMS, signer)
    assert other.kms_key_id in str(raised.value.detail)


# ---- failures are FederationErrors that say what to check ---------------------------


def signer_in(kms: Any, alg: str = "ES256") -> tuple[Signer, str, str]:
    """A KMS key made through KmsMaterial, its signer as loaded from its row, its ids."""
    made = KmsMaterial(kms).generate(alg)
    assert made.kms_key_id is not None
    signer = KmsMaterial(kms).open(row_for(made.signer.public_key, made.kms_key_id))
    key_id = kms.describe_key(KeyId=made.kms_key_id)["KeyMetadata"]["KeyId"]
    return signer, made.kms_key_id, key_id


@pytest.mark.usefixtures("kms_enforces_key_state")
def test_a_disabled_key_is_a_configuration_error_until_enabled(kms: Any) -> None:
    signer, arn, key_id = signer_in(kms)
    kms.disable_key(KeyId=key_id)  # NOTE: moto's disable_key takes the key id, not the ARN

    with pytest.raises(ConfigurationError) as raised:
        jws.encode(CLAIMS, signer)
    assert raised.value.retryable is False
    assert "DisabledException" in raised.value.message
    assert arn in raised.value.message
    assert "enable it" in raised.value.message
    assert SECRET not in raised.value.message

    kms.enable_key(KeyId=key_id)
    assert verified(jws.encode(CLAIMS, signer), kms_public_key(kms, arn), "ES256") == CLAIMS


@pytest.mark.usefixtures("kms_enforces_key_state")
def test_a_key_pending_deletion_is_a_configuration_error(kms: Any) -> None:
    signer, arn, key_id = signer_in(kms, "RS256")
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)

    with pytest.raises(ConfigurationError, match="KMSInvalidStateException") as raised:
        jws.encode(CLAIMS, signer)
    assert "pending deletion" in raised.value.message
    assert arn in raised.value.message


def test_a_key_missing_from_the_region_is_a_configuration_error(kms: Any) -> None:
    signer = KmsMaterial(kms).open(row_for(local_public("ES256"), MISSING_ARN))
    with pytest.raises(ConfigurationError, match="NotFoundException") as raised:
        jws.encode(CLAIMS, signer)
    assert "FEDERATION_KMS_REGION" in raised.value.message
    assert MISSING_ARN in raised.value.message


@pytest.mark.parametrize(
    ("code", "status", "kind", "hint"),
    [
        ("AccessDeniedException", 400, ConfigurationError, "kms:Sign"),
        ("UnrecognizedClientException", 400, ConfigurationError, "credential chain"),
        ("InvalidSignatureException", 400, ConfigurationError, "credential chain"),
        ("ThrottlingException", 400, ResourceUnavailable, "try again"),
        ("KMSInternalException", 500, ResourceUnavailable, "try again"),
        ("KeyUnavailableException", 500, ResourceUnavailable, "try again"),
        ("ValidationException", 400, InternalError, "ValidationException"),
    ],
)
def test_kms_error_codes_become_federation_errors(
    code: str, status: int, kind: type[FederationError], hint: str
) -> None:
    client = kms_client(REGION, None)
    signer = KmsMaterial(client).open(row_for(local_public("ES256"), MISSING_ARN))
    with Stubber(client) as stub:
        # AWS's own message is never repeated: some quote the signed request.
        stub.add_client_error(
            "sign", service_error_code=code, service_message=SECRET, http_status_code=status
        )
        with pytest.raises(FederationError) as raised:
            signer.sign(b"header.payload")

    assert type(raised.value) is kind
    assert raised.value.retryable is (kind is ResourceUnavailable)
    assert hint in raised.value.message
    assert MISSING_ARN in raised.value.message
    assert SECRET not in raised.value.message
    assert isinstance(raised.value.__cause__, Exception)


def test_creating_a_key_without_permission_is_a_configuration_error() -> None:
    client = kms_client(REGION, None)
    with Stubber(client) as stub:
        stub.add_client_error("create_key", service_error_code="AccessDeniedException")
        with pytest.raises(ConfigurationError, match="kms:CreateKey"):
            KmsMaterial(client).generate("RS256")


# ---- KMS out of reach, region and credentials missing -------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_endpoint_is_resource_unavailable_quickly() -> None:
    client = kms_client(
        REGION, f"http://127.0.0.1:{closed_port()}", connect_timeout=1, max_attempts=1
    )
    signer = KmsMaterial(client).open(row_for(local_public("ES256"), MISSING_ARN))

    started = time.monotonic()
    with pytest.raises(ResourceUnavailable, match="could not be reached") as raised:
        signer.sign(b"header.payload")
    assert time.monotonic() - started < 5
    assert raised.value.retryable is True
    assert "EndpointConnectionError" in raised.value.message
    assert SECRET not in raised.value.message


def test_an_endpoint_that_never_answers_is_resource_unavailable_quickly() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts the connection; nobody ever answers
        port = silent.getsockname()[1]
        client = kms_client(REGION, f"http://127.0.0.1:{port}", read_timeout=1, max_attempts=1)
        sent: list[object] = []
        client.meta.events.register("before-send.kms.Sign", lambda **_: sent.append(_))
        signer = KmsMaterial(client).open(row_for(local_public("RS256"), MISSING_ARN))

        started = time.monotonic()
        with pytest.raises(ResourceUnavailable, match="ReadTimeoutError"):
            signer.sign(b"header.payload")
        assert time.monotonic() - started < 5
    # NOTE: botocore reads retries={"max_attempts": n} as n retries; ours means attempts.
    assert len(sent) == 1


def test_no_region_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigurationError, match="FEDERATION_KMS_REGION"):
        kms_client(None, None)


def test_no_credentials_names_the_credential_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    # A closed loopback port: were credentials found after all, nothing leaves the host.
    client = kms_client(REGION, f"http://127.0.0.1:{closed_port()}", max_attempts=1)
    signer = KmsMaterial(client).open(row_for(local_public("ES256"), MISSING_ARN))

    with pytest.raises(ConfigurationError, match="credential chain") as raised:
        signer.sign(b"header.payload")
    assert "NoCredentialsError" in raised.value.message
