"""What the GCP tests share: a real issuer served in process on a port chosen before its
settings (so discovery names the URL it answers on), agents inside runs, the GCP
stand-in on loopback, and a PyJWT check of the tokens the stand-in was shown."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from federation.client import ApiClient
from federation.clock import Clock
from federation.exchange.source import ApiTokenSource
from federation.stand_ins.gcp_sts import GcpStandIn, Provider, gcp_sts_app
from federation.stand_ins.issuers import IssuerKeys
from federation.stand_ins.serving import serve
from tests.cli.helpers import invoke_main, verify_with_pyjwt
from tests.support import Agent, LiveServer, World

PROJECT_NUMBER = "123456789012"
POOL = f"iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/agents"
PROVIDER = f"//{POOL}/providers/federation"
SERVICE_ACCOUNT = "deployer@acme-prod.iam.gserviceaccount.com"
OTHER_SERVICE_ACCOUNT = "billing@acme-prod.iam.gserviceaccount.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def principal(subject: str) -> str:
    return f"principal://{POOL}/subject/{subject}"


@dataclass
class Run:
    """An agent inside a run on the issuer: what a run's environment holds."""

    server: LiveServer
    agent: Agent

    @property
    def subject(self) -> str:
        return f"user:{self.agent.uid}"

    @contextmanager
    def source(self) -> Iterator[ApiTokenSource]:
        """What a program in the run mints with; its HTTP client is closed after."""
        with ApiClient(self.server.url, self.agent.key) as client:
            yield ApiTokenSource(client, self.agent.run_id, self.agent.workload_token)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **self.server.env,
            "WARP_API_KEY": self.agent.key,
            "WARP_WORKLOAD_TOKEN": self.agent.workload_token,
            "OZ_RUN_ID": self.agent.run_id,
            **extra,
        }

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """The entry point's ``main``, in this process, in the run's environment."""
        return invoke_main(*args, env=self.env(**extra), cwd=self.server.home)


def new_run(server: LiveServer, **attributes: str) -> Run:
    return Run(server=server, agent=World.live(server).platform_agent(**attributes))


@dataclass
class StandIn:
    url: str
    gcp: GcpStandIn

    @property
    def token_url(self) -> str:
        return f"{self.url}/v1/token"


@contextmanager
def running_gcp(
    providers: Sequence[Provider],
    service_accounts: Mapping[str, Sequence[str]] | None = None,
    *,
    clock: Clock | None = None,
) -> Iterator[StandIn]:
    """The stand-in on a free loopback port, stopped after."""
    with httpx.Client(timeout=5.0) as http:
        app = gcp_sts_app(providers, service_accounts, clock=clock, keys=IssuerKeys(http))
        with serve(app) as url:
            yield StandIn(url=url, gcp=app.state.gcp)


def provider(server: LiveServer, **changes: Any) -> Provider:
    """The provider that trusts ``server``'s tokens, with ``changes``."""
    fields: dict[str, Any] = {"name": PROVIDER, "issuer_uri": server.url}
    return Provider(**{**fields, **changes})


def checked_exchange(stand_in: StandIn, run: Run, audience: str, index: int = -1) -> dict[str, Any]:
    """The claims of a token the stand-in accepted, verified again with PyJWT against the
    issuer's discovery and JWKS (independent of the stand-in's joserfc check)."""
    seen = stand_in.gcp.exchanges[index]
    assert seen.header["alg"] in {"ES256", "RS256"}
    assert seen.header["kid"]
    verified = verify_with_pyjwt(seen.token, run.server.url, audience)
    assert verified == seen.claims
    assert verified["iss"] == run.server.url
    assert verified["sub"] == run.subject
    assert verified["run_id"] == run.agent.run_id
    return verified
