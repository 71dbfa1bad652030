"""Shared pieces of the AWS tests: a real issuer served on loopback, the STS stand-in,
a second (foreign) issuer whose tokens PyJWT signs, and an AWS environment that nothing
of the developer's machine leaks into."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from federation.client import ApiClient
from federation.clock import Clock
from federation.exchange import aws
from federation.exchange.source import ApiTokenSource
from federation.stand_ins.aws_sts import AwsSts, OidcProvider, Role, aws_sts_app
from federation.stand_ins.issuers import IssuerKeys
from federation.stand_ins.serving import serve
from tests.support import Agent, LiveServer, World

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/deploy"
TAGGING_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/tagged"
TEAM_PATTERN = "scoped_principal:platform/*"


def source_for(server: LiveServer, agent: Agent) -> ApiTokenSource:
    """What a run's environment gives the exchange helpers (close ``.client`` after)."""
    return ApiTokenSource(ApiClient(server.url, agent.key), agent.run_id, agent.workload_token)


def run_env(server: LiveServer, agent: Agent, **extra: str) -> dict[str, str]:
    """A run's environment for the real entry point: this process's (AWS isolated by the
    test), the issuer, the agent's key, workload token and run."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FEDERATION_", "WARP_", "OZ_"))
    }
    env.update(
        FEDERATION_URL=server.url,
        WARP_API_KEY=agent.key,
        WARP_WORKLOAD_TOKEN=agent.workload_token,
        OZ_RUN_ID=agent.run_id,
        **extra,
    )
    return env


def new_agent(server: LiveServer, **attributes: str) -> Agent:
    """A user of team ``platform`` with a federate key and an INPROGRESS run."""
    return World.live(server).platform_agent(**attributes)


def roles() -> list[Role]:
    return [
        Role(ROLE_ARN, sub=TEAM_PATTERN),
        Role(TAGGING_ROLE_ARN, sub=TEAM_PATTERN, tag_session=True, max_session_duration=43200),
    ]


@contextmanager
def stand_in(
    providers: Sequence[OidcProvider], roles: Sequence[Role], *, clock: Clock | None = None
) -> Iterator[tuple[str, AwsSts]]:
    """The STS stand-in on loopback: its URL, and its state (what it granted)."""
    with httpx.Client(timeout=5.0) as http:
        app = aws_sts_app(providers, roles, clock=clock, keys=IssuerKeys(http))
        with serve(app) as url:
            yield url, app.state.sts


@dataclass
class ForeignIssuer:
    """A second OIDC issuer, not ours: PyJWT signs its tokens, with an EC key (ES256,
    ES384 with its P-384 key) or an RSA key (RS256/384/512, PS256)."""

    url: str
    keys: dict[str, Any]

    def token(self, algorithm: str = "ES256", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.url,
            "aud": "sts.amazonaws.com",
            "sub": "scoped_principal:platform/user:mallory",
            "iat": now,
            "exp": now + 600,
            **claims,
        }
        kid = {"ES256": "ec", "ES384": "ec384"}.get(algorithm, "rsa")
        if algorithm.startswith("HS"):
            return jwt.encode(body, "s" * 64, algorithm=algorithm, headers={"kid": "rsa"})
        return jwt.encode(body, self.keys[kid], algorithm=algorithm, headers={"kid": kid})


@contextmanager
def foreign_issuer() -> Iterator[ForeignIssuer]:
    keys: dict[str, Any] = {
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "ec384": ec.generate_private_key(ec.SECP384R1()),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }
    jwks = [{**_jwk(key.public_key()), "kid": kid, "use": "sig"} for kid, key in keys.items()]
    holder: dict[str, str] = {}

    async def discovery(_: Request) -> JSONResponse:
        return JSONResponse({"issuer": holder["url"], "jwks_uri": f"{holder['url']}/jwks"})

    async def published(_: Request) -> JSONResponse:
        return JSONResponse({"keys": jwks})

    app = Starlette(
        routes=[Route("/.well-known/openid-configuration", discovery), Route("/jwks", published)]
    )
    with serve(app) as url:
        holder["url"] = url
        yield ForeignIssuer(url, keys)


def _jwk(public: Any) -> dict[str, Any]:
    if isinstance(public, rsa.RSAPublicKey):
        return dict(RSAAlgorithm.to_jwk(public, as_dict=True))
    return dict(ECAlgorithm.to_jwk(public, as_dict=True))


def isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS setting of the developer's machine reaches a test: no profiles, keys,
    endpoints or instance metadata; region us-east-1."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


class ShiftedClock:
    """The real time, moved by ``shift`` (to see a live token from the future)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift


@contextmanager
def module_client(url: str, tmp_path: Path) -> Iterator[Any]:
    """One STS client for a module's tests (making one costs a few hundred ms), made
    where no AWS setting of the machine reaches it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_aws(monkeypatch, tmp_path)
        yield aws.sts_client(endpoint_url=url, max_attempts=1)


def wait_until(condition: Any, *, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition()`` until it is true (bounded)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
