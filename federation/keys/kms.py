"""Signing keys held by AWS KMS: the ``aws-kms`` key store.

KMS makes each key and keeps its private half; the database keeps the key's ARN and its
public key, so loading the keyring and publishing the JWKS need no KMS call: only
signing does. The issuer's AWS identity needs ``kms:CreateKey``, ``kms:TagResource`` and
``kms:GetPublicKey`` to create keys, and ``kms:Sign`` on them to sign.

No botocore exception leaves this module: an unreachable or throttled KMS is
:class:`ResourceUnavailable` (retryable); a disabled, missing or forbidden key, or a
missing region or credentials, is :class:`ConfigurationError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore import exceptions as boto
from botocore.config import Config
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from federation.errors import ConfigurationError, InternalError, ResourceUnavailable
from federation.keys.database import NewKey
from federation.keys.jwk import PublicKey
from federation.keys.signers import ALGORITHMS, KeyIdentity, Signer, algorithm_of
from federation.store.models import SigningKey

BACKEND = "aws-kms"

# KMS signs at most 4096 bytes of RAW message. MessageType=DIGEST would lift the limit,
# but moto ignores it (it hashes the digest again), so that path could not be tested;
# a JWS signing input is far below the limit.
MAX_SIGNING_INPUT = 4096

# JWS algorithm -> (KMS KeySpec, KMS SigningAlgorithm).
_KMS_ALGORITHMS = {
    "ES256": ("ECC_NIST_P256", "ECDSA_SHA_256"),
    "RS256": ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"),
}

# AWS error codes a retry may cure (as may any 5xx answer).
_TRANSIENT = {"DependencyTimeoutException", "KMSInternalException", "ThrottlingException"}
_CREDENTIALS = "check the AWS credentials the issuer runs with (the AWS credential chain)"
# What an operator should check, for the AWS error codes that need one.
_CHECKS = {
    "AccessDeniedException": "does the issuer's AWS identity have {permission} on the key?",
    "DisabledException": "the key is disabled: enable it, or retire this signing key",
    "KMSInvalidStateException": "is it pending deletion? cancel that and enable it",
    "NotFoundException": "the key does not exist in this account and FEDERATION_KMS_REGION",
    "InvalidKeyUsageException": "the key is not a SIGN_VERIFY key of the expected key spec",
    "LimitExceededException": "an AWS KMS quota of the account is exhausted",
    "UnrecognizedClientException": _CREDENTIALS,
    "InvalidSignatureException": _CREDENTIALS,
    "IncompleteSignature": _CREDENTIALS,
    "ExpiredTokenException": _CREDENTIALS,
    "InvalidClientTokenId": _CREDENTIALS,
}
_UNREACHABLE = (boto.ConnectionError, boto.HTTPClientError, boto.IncompleteReadError)
_NO_CREDENTIALS = (
    boto.NoCredentialsError,
    boto.PartialCredentialsError,
    boto.CredentialRetrievalError,
    boto.TokenRetrievalError,
    boto.ProfileNotFound,
    boto.SSOError,
)
_NO_REGION = "no AWS region for AWS KMS: set FEDERATION_KMS_REGION to the keys' region"


def kms_client(
    region: str | None,
    endpoint_url: str | None,
    *,
    connect_timeout: float = 2,
    read_timeout: float = 3,
    max_attempts: int = 3,
) -> Any:
    """A boto3 KMS client with credentials from the AWS credential chain and every call
    bounded in time (signing is on the path of each token request). ``max_attempts``
    counts the first attempt (botocore's ``retries["max_attempts"]`` would not)."""
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
    )
    try:
        # NOTE: a session of its own, not boto3's module-level default session.
        return boto3.session.Session().client(
            "kms", region_name=region, endpoint_url=endpoint_url, config=config
        )
    except ValueError as exc:  # an invalid endpoint URL or region name
        raise ConfigurationError(
            f"cannot make an AWS KMS client ({type(exc).__name__}): check "
            "FEDERATION_KMS_REGION and FEDERATION_KMS_ENDPOINT_URL"
        ) from exc
    except boto.BotoCoreError as exc:
        raise _translated(exc, "kms:*", "make an AWS KMS client") from exc


class KmsSigner(KeyIdentity):
    """Signs in AWS KMS with the key ``key_id``; the private key never leaves KMS."""

    def __init__(self, client: Any, key_id: str, public_key: PublicKey) -> None:
        super().__init__(public_key)
        self._client = client
        self._key_id = key_id

    @classmethod
    def from_kms(cls, client: Any, key_id: str) -> KmsSigner:
        """The signer of ``key_id``, its public key read from KMS (``GetPublicKey``)."""
        with _calling_kms("kms:GetPublicKey", f"read the public key of key {key_id}"):
            answer = client.get_public_key(KeyId=key_id)
        return cls(client, key_id, _public_key(answer["PublicKey"], f"AWS KMS key {key_id}"))

    def sign(self, signing_input: bytes) -> bytes:
        if len(signing_input) > MAX_SIGNING_INPUT:
            raise InternalError(
                f"the JWS signing input is {len(signing_input)} bytes; AWS KMS signs at "
                f"most {MAX_SIGNING_INPUT}: the token's claims are too large for the "
                "aws-kms key store",
                retryable=False,
            )
        with _calling_kms("kms:Sign", f"sign with key {self._key_id}"):
            answer = self._client.sign(
                KeyId=self._key_id,
                Message=signing_input,
                MessageType="RAW",
                SigningAlgorithm=_KMS_ALGORITHMS[self._alg][1],
            )
        return self._checked(signing_input, bytes(answer["Signature"]))

    def _checked(self, signing_input: bytes, signature: bytes) -> bytes:
        """``signature`` in JWS form, once it verifies with the published public key.

        NOTE: a row whose KMS key id names another key would otherwise sign every token
        with a key no verifier knows; the failure would surface far away, at AWS STS or
        GCP, one exchange at a time. Verifying costs far less than the KMS call."""
        try:
            if isinstance(self._public, ec.EllipticCurvePublicKey):
                # KMS answers ECDSA in DER (X9.62); JWS wants r || s, 32 bytes each.
                self._public.verify(signature, signing_input, ec.ECDSA(hashes.SHA256()))
                r, s = decode_dss_signature(signature)
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")
            self._public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError) as exc:
            raise ConfigurationError(
                f"AWS KMS key {self._key_id} signed, but not as signing key {self._kid}: "
                "its signature does not verify with the stored public key; check the key "
                "id kept for this signing key"
            ) from exc
        return signature


class KmsMaterial:
    """Keys made by AWS KMS (asymmetric, SIGN_VERIFY); the database keeps ARN and public key."""

    backend = BACKEND

    def __init__(self, client: Any) -> None:
        self.client = client

    def generate(self, alg: str) -> NewKey:
        if alg not in _KMS_ALGORITHMS:
            raise ValueError(f"unsupported algorithm {alg!r}; use one of {', '.join(ALGORITHMS)}")
        with _calling_kms("kms:CreateKey", f"create an {alg} key"):
            created = self.client.create_key(
                KeySpec=_KMS_ALGORITHMS[alg][0],
                KeyUsage="SIGN_VERIFY",
                Description=f"federation OIDC token issuer: {alg} token-signing key",
                Tags=[{"TagKey": "federation:alg", "TagValue": alg}],
            )
        arn = str(created["KeyMetadata"]["Arn"])
        signer = KmsSigner.from_kms(self.client, arn)
        if signer.alg != alg:
            raise ConfigurationError(f"AWS KMS key {arn} made for {alg} holds a {signer.alg} key")
        return NewKey(signer=signer, public_key=_public_der(signer.public_key), kms_key_id=arn)

    def open(self, row: SigningKey) -> Signer:
        # NOTE: no KMS call: the keyring loads, and the JWKS is served, while KMS is away.
        if not row.kms_key_id:
            raise ConfigurationError(f"signing key {row.kid} has no AWS KMS key id")
        public = _public_key(row.public_key, f"signing key {row.kid}")
        signer = KmsSigner(self.client, row.kms_key_id, public)
        if signer.kid != row.kid or signer.alg != row.alg:
            raise ConfigurationError(
                f"signing key {row.kid} ({row.alg}) does not match its stored public key"
            )
        return signer

    def location(self, row: SigningKey) -> str:
        return f"{BACKEND} {row.kms_key_id or '(no key id)'}"

    def discard(self, new: NewKey) -> None:
        """Schedule deletion of a key that could not be stored (best effort: the error
        that caused this is the one to report)."""
        if new.kms_key_id:
            key_id = new.kms_key_id.rsplit("/", 1)[-1]  # the bare id, valid in the key's region
            with contextlib.suppress(boto.ClientError, boto.BotoCoreError):
                self.client.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)


def _public_key(der: bytes, what: str) -> PublicKey:
    try:
        key = serialization.load_der_public_key(der)
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError(f"unsupported key type {type(key).__name__}")
        algorithm_of(key)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{what} has no usable public key: {exc}") from exc
    return key


def _public_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@contextmanager
def _calling_kms(permission: str, action: str) -> Iterator[None]:
    """Turn botocore's failures in one KMS call into FederationErrors."""
    try:
        yield
    except (boto.ClientError, boto.BotoCoreError) as exc:
        raise _translated(exc, permission, action) from exc


def _translated(
    exc: Exception, permission: str, action: str
) -> InternalError | ResourceUnavailable:
    # NOTE: never AWS's own message or str(exc): an InvalidSignatureException may quote
    # the canonical request (session token included), a credential_process its output.
    name = type(exc).__name__
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code in _TRANSIENT or status >= 500:
            return ResourceUnavailable(f"AWS KMS could not {action} ({code}); try again later")
        if code in _CHECKS:
            check = _CHECKS[code].format(permission=permission)
            return ConfigurationError(f"AWS KMS refused to {action} ({code}): {check}")
        return InternalError(f"AWS KMS refused to {action} ({code})", retryable=False)
    if isinstance(exc, _UNREACHABLE):
        return ResourceUnavailable(
            f"AWS KMS could not be reached to {action} ({name}); check network access to "
            "AWS KMS (and FEDERATION_KMS_ENDPOINT_URL, if set)"
        )
    if isinstance(exc, boto.NoRegionError):
        return ConfigurationError(_NO_REGION)
    if isinstance(exc, _NO_CREDENTIALS):
        return ConfigurationError(f"no usable AWS credentials to {action} ({name}): {_CREDENTIALS}")
    return InternalError(f"AWS KMS call to {action} failed ({name})", retryable=False)
