"""What the Azure tests share: an agent inside a run on an issuer served on loopback,
the Entra stand-in (http, or https with a throwaway certificate), and a PyJWT check of
what the stand-in was shown."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federation.client import ApiClient
from federation.clock import Clock
from federation.domain.tokens import ENTRA_AUDIENCE
from federation.errors import FederationError
from federation.exchange.source import ApiTokenSource
from federation.stand_ins.entra import EntraStandIn, FederatedCredential
from federation.stand_ins.issuers import IssuerKeys
from federation.stand_ins.serving import serve
from tests.cli.helpers import verify_with_pyjwt
from tests.support import Agent, LiveServer, World

TENANT = "8f0c1d2e-3a4b-4c5d-9e6f-7a8b9c0d1e2f"
CLIENT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SCOPE = "https://management.azure.com/.default"


@dataclass
class Run:
    """An agent inside a run on a live issuer: what `exchange azure` runs with."""

    server: LiveServer
    agent: Agent

    @property
    def subject(self) -> str:
        return f"user:{self.agent.uid}"

    @contextmanager
    def source(self) -> Iterator[ApiTokenSource]:
        """Mints through the issuer's API as the run's agent; the client is closed after."""
        with ApiClient(self.server.url, self.agent.key) as client:
            yield ApiTokenSource(client, self.agent.run_id, self.agent.workload_token)

    def env(self) -> dict[str, str]:
        return {
            "WARP_API_KEY": self.agent.key,
            "WARP_WORKLOAD_TOKEN": self.agent.workload_token,
            "OZ_RUN_ID": self.agent.run_id,
        }

    def credential(self, **changes: str) -> FederatedCredential:
        """The federated credential that trusts this run's tokens, with ``changes``."""
        fields = {"client_id": CLIENT, "issuer": self.server.url, "subject": self.subject}
        return FederatedCredential(**{**fields, **changes})


def new_run(server: LiveServer) -> Run:
    return Run(server=server, agent=World.live(server).platform_agent())


@dataclass
class StandIn:
    """The running stand-in: its base URL (the authority) and what it granted."""

    url: str
    entra: EntraStandIn


@contextmanager
def running_entra(
    *credentials: FederatedCredential,
    clock: Clock | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[StandIn]:
    """The stand-in for tenant ``TENANT`` on a free loopback port, stopped after."""
    with httpx.Client(timeout=5.0) as http:
        entra = EntraStandIn(TENANT, credentials, keys=IssuerKeys(http), clock=clock)
        certificate, key = tls if tls else (None, None)
        with serve(entra.app(), certificate=certificate, private_key=key) as url:
            yield StandIn(url=url, entra=entra)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (also its own CA) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / "entra.crt", directory / "entra.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return certificate_path, key_path


def checked_assertion(entra: EntraStandIn, run: Run, index: int = -1) -> dict[str, Any]:
    """The claims of an assertion the stand-in accepted, verified again with PyJWT against
    the issuer's discovery and JWKS; header and issuer/subject/audience checked too."""
    grant = entra.grants[index]
    assert grant.assertion.header["alg"] == "RS256"
    assert grant.assertion.header["kid"]
    claims = grant.assertion.claims
    verified = verify_with_pyjwt(grant.assertion_jwt, run.server.url, ENTRA_AUDIENCE)
    assert verified == claims
    assert verified["iss"] == run.server.url
    assert verified["sub"] == run.subject
    assert ENTRA_AUDIENCE in (
        verified["aud"] if isinstance(verified["aud"], list) else [verified["aud"]]
    )
    return verified


def upstream(error: FederationError) -> dict[str, Any]:
    """What Entra answered (service, code, aadsts), as the error carries it; never a
    token. Entra's correlation id, when it sent one, is there too."""
    assert "eyJ" not in error.message
    assert "eyJ" not in json.dumps(error.extensions)
    found = dict(error.extensions["upstream"])
    assert found["service"] == "entra"
    assert isinstance(found.pop("correlation_id", ""), str)
    return found
