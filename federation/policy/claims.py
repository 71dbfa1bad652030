"""What the testers read: a token's claims (and header), from a token or a JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.errors import InvalidRequest


@dataclass(frozen=True)
class TokenFacts:
    """The claims a policy is evaluated against, and the header when a token was given
    (a header rule, such as GCP's alg and kid or Entra's RS256, needs it)."""

    claims: dict[str, Any]
    header: dict[str, Any] = field(default_factory=dict)
    # Whether the header is a signed token's: a preview's lacks the kid signing picks.
    signed: bool = False


def from_token(token: str) -> TokenFacts:
    """The token's claims, unverified: the tester predicts, a cloud verifies."""
    from federation.keys.verify import decode  # NOTE: lazily: verify loads joserfc

    decoded = decode(token)
    return TokenFacts(claims=decoded.claims, header=decoded.header, signed=True)


def from_file(path: Path) -> TokenFacts:
    """Claims from a JSON file: a claims object, or ``{"header": ..., "claims": ...}``
    as ``federation decode`` prints it."""
    document = load_json(path, "claims")
    if isinstance(document.get("claims"), dict):
        header = document.get("header")
        return TokenFacts(
            claims=document["claims"],
            header=header if isinstance(header, dict) else {},
            signed=isinstance(header, dict),
        )
    return TokenFacts(claims=document)


def load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"cannot read the {what} file {path}: {exc.strerror}") from None
    except ValueError:
        raise InvalidRequest(f"the {what} file {path} is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidRequest(f"the {what} file {path} must hold a JSON object")
    return document
