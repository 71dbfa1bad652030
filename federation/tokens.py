"""Token claims, in the form Oz issues them (``reference/oz-api.md`` §4d)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from federation.errors import InvalidRequest

TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a URN
ENTRA_AUDIENCE = "api://AzureADTokenExchange"
AWS_TAGS_CLAIM = "https://aws.amazon.com/tags"
MAX_AUDIENCE_LENGTH = 256
RUN_CLAIMS = ("run_id", "environment", "agent_name", "skill_spec", "host")
CLAIMS_SUPPORTED = (
    "iss",
    "sub",
    "aud",
    "iat",
    "nbf",
    "exp",
    "jti",
    "email",
    "teams",
    *RUN_CLAIMS,
)


def new_jti() -> str:
    """144 random bits, URL-safe."""
    return secrets.token_urlsafe(18)


def check_audience(audience: str) -> str:
    if not audience or len(audience) > MAX_AUDIENCE_LENGTH:
        raise InvalidRequest(f"audience must be 1 to {MAX_AUDIENCE_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in audience):
        raise InvalidRequest("audience may not contain spaces or control characters")
    return audience


@dataclass(frozen=True)
class Claims:
    """The claims of one token, in Oz's form."""

    issuer: str
    subject: str
    audience: str
    issued_at: int
    expires_at: int
    jti: str
    email: str | None
    team: str | None
    run_id: str
    environment: str | None
    agent_name: str | None
    skill_spec: str | None
    host: str | None
    audience_as_array: bool = True
    aws_tags: dict[str, str] | None = None

    @property
    def aud(self) -> list[str] | str:
        return [self.audience] if self.audience_as_array else self.audience

    def to_dict(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.aud,
            "iat": self.issued_at,
            "nbf": self.issued_at,
            "exp": self.expires_at,
            "jti": self.jti,
        }
        if self.email is not None:
            claims["email"] = self.email
        if self.team is not None:
            claims["teams"] = [self.team]
        for name in RUN_CLAIMS:
            value = getattr(self, name)
            if value is not None:
                claims[name] = value
        if self.aws_tags:
            # STS takes single values only, each in a one-element list.
            claims[AWS_TAGS_CLAIM] = {
                "principal_tags": {key: [value] for key, value in self.aws_tags.items()}
            }
        return claims
