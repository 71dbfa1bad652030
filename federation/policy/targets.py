"""What a token is tested against: one cloud's policy document and its settings.

The CLI's ``policy test`` and ``issue-token --check-*`` build one of these from files
and flags; each evaluates :class:`~federation.policy.claims.TokenFacts` with its cloud's
rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from federation.policy.claims import TokenFacts
from federation.policy.result import Evaluation

AWS_CLIENT_ID = "sts.amazonaws.com"


class Target(Protocol):
    def evaluate(self, facts: TokenFacts, now: datetime | None = None) -> Evaluation: ...


@dataclass(frozen=True)
class AwsTrustPolicy:
    """An IAM role's trust policy, and the OIDC provider the token is presented through."""

    document: dict[str, Any]
    provider_arn: str | None = None
    client_ids: tuple[str, ...] = (AWS_CLIENT_ID,)

    def evaluate(self, facts: TokenFacts, now: datetime | None = None) -> Evaluation:
        from federation.policy import aws

        return aws.evaluate(
            self.document,
            facts.claims,
            provider_arn=self.provider_arn,
            client_ids=self.client_ids,
            now=now,
        )


@dataclass(frozen=True)
class GcpProvider:
    """A workload identity pool provider, and optionally the IAM member a role is
    granted to."""

    document: dict[str, Any]
    member: str | None = None

    def evaluate(self, facts: TokenFacts, now: datetime | None = None) -> Evaluation:
        from federation.policy import gcp

        return gcp.evaluate(
            self.document,
            facts.claims,
            member=self.member,
            header=facts.header or None,
            signed=facts.signed,
            now=now,
        )


@dataclass(frozen=True)
class AzureCredential:
    """A federated identity credential of an Entra app or managed identity."""

    document: dict[str, Any]

    def evaluate(self, facts: TokenFacts, now: datetime | None = None) -> Evaluation:
        from federation.policy import azure

        return azure.evaluate(self.document, facts.claims, header=facts.header or None, now=now)
