"""The token file of the AWS SDKs' web identity provider, kept fresh.

botocore's ``AssumeRoleWithWebIdentityProvider`` reads ``AWS_WEB_IDENTITY_TOKEN_FILE`` on
every refresh of its credentials, so the file must always hold a valid token: it is
replaced whole (never half-written) before the token in it expires.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from federation._internal.files import replace_private
from federation.clock import Clock
from federation.errors import FederationError
from federation.exchange.aws import AUDIENCE, SUBJECT_TEMPLATE
from federation.exchange.source import MintedToken, TokenSource

TOKEN_FILE_DURATION = "3h"  # noqa: S105 - a duration: Oz's, the longest run


def write_token_file(path: Path, token: str) -> None:
    """Replace ``path`` with ``token`` in one step: a new 0600 file beside it, renamed over
    it, so botocore never reads half a token. A missing directory is made 0700; an
    existing one (the run's home, say) is left as it is."""
    replace_private(path, token.encode("ascii"), own_directory=False)


@dataclass(frozen=True)
class WebIdentityTokenFile:
    """The file ``AWS_WEB_IDENTITY_TOKEN_FILE`` names, holding a token for STS."""

    path: Path
    source: TokenSource
    duration: str | None = TOKEN_FILE_DURATION
    subject_template: Sequence[str] = SUBJECT_TEMPLATE

    def refresh(self) -> MintedToken:
        minted = self.source.mint(
            AUDIENCE, duration=self.duration, subject_template=self.subject_template
        )
        write_token_file(self.path, minted.token)
        return minted

    def current(self) -> MintedToken | None:
        """The token in the file, read (not verified) for its times; None if unreadable."""
        from federation.keys.verify import decode  # joserfc loads only when used

        try:
            token = self.path.read_text(encoding="ascii").strip()
            claims = decode(token).claims
            times = [datetime.fromtimestamp(int(claims[name]), UTC) for name in ("iat", "exp")]
        except (OSError, ValueError, KeyError, TypeError, FederationError):
            return None
        return MintedToken(token, times[0], times[1], str(claims.get("sub")), str(claims["iss"]))


def keep_fresh(
    token_file: WebIdentityTokenFile,
    current: MintedToken | None,
    *,
    clock: Clock,
    sleep: Callable[[float], None],
    retry_seconds: float = 30.0,
    min_wait: float = 1.0,
) -> str:
    """Rewrite the token file at about half of each token's lifetime until the issuer
    refuses for good (a non-retryable answer: the run finished, the key is gone) or the
    file is removed. Passing failures are retried every ``retry_seconds``, for up to a
    lifetime past the last token's expiry. Returns why it stopped."""
    current = current or token_file.refresh()
    due, deadline = _schedule(current)
    while True:
        sleep(max((due - clock.now()).total_seconds(), min_wait))
        if not token_file.path.exists():
            return "the token file was removed"
        try:
            due, deadline = _schedule(token_file.refresh())
        except FederationError as error:
            if not error.retryable:
                return f"the issuer refused: {error.message}"
            if clock.now() >= deadline:
                return f"gave up: the issuer kept failing ({error.message})"
            due = clock.now() + timedelta(seconds=retry_seconds)


def _schedule(token: MintedToken) -> tuple[datetime, datetime]:
    """When to refresh (halfway), and when to stop retrying (a lifetime past expiry)."""
    lifetime = token.expires_at - token.issued_at
    return token.issued_at + lifetime / 2, token.expires_at + lifetime
