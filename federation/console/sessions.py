"""Console sessions: the API key sealed in a browser-session cookie, the server's record
of the session, and CSRF tokens.

The console signs in with an API key and keeps it nowhere but in the browser: in a
cookie without an expiry (gone when the browser session ends), ``HttpOnly`` (no script
reads it), ``SameSite=Strict``, scoped to ``/console`` and sealed with AES-256-GCM under a
key derived from the console secret, so the raw key is never in a URL, in local storage
or in a page. A sealed session older than :data:`SESSION_LIFETIME` no longer opens.

A cookie alone is not a session: it also seals a random session id, and the server's
:class:`SessionStore` must still hold that session as live (not signed out, not ended
by an admin's "sign out everywhere", its key not deleted or expired). So a copy of the
cookie is worthless once its session has ended, on every replica.

CSRF: every state-changing form carries an HMAC of a random per-browser nonce kept in a
second cookie of the same kind; a POST without the pair, or from another origin, is
refused. The nonce is replaced at sign-in and sign-out.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from federation._internal.encoding import b64url_decode, b64url_text

SESSION_COOKIE = "federation_console"
CSRF_COOKIE = "federation_console_csrf"
COOKIE_PATH = "/console"
SESSION_LIFETIME = 8 * 3600  # seconds: a working day, then sign in again
_NONCE_BYTES = 12
_SESSION_ID_BYTES = 32  # 256 bits: guessing a live session is hopeless


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


@dataclass(frozen=True)
class ConsoleSession:
    api_key: str
    signed_in_at: int
    session_id: str


class SessionStore(Protocol):
    """Where the server keeps console sessions (one database for every replica)."""

    async def begin(self, session_id: str, api_key: str) -> None:
        """Record a new session of ``api_key``; ``AuthenticationRequired`` unless the
        key authenticates."""
        ...

    async def is_live(self, session_id: str, api_key: str) -> bool:
        """Whether the session is neither ended nor old, and its key still works."""
        ...

    async def end(self, session_id: str) -> None:
        """End the session (signing out)."""
        ...


class SessionCodec:
    """Seals and opens session cookies and makes and checks CSRF tokens."""

    def __init__(self, secret: bytes, *, lifetime: int = SESSION_LIFETIME) -> None:
        self._aead = AESGCM(_derive(secret, b"federation console session"))
        self._csrf_key = _derive(secret, b"federation console csrf")
        self.lifetime = lifetime

    @staticmethod
    def new_session_id() -> str:
        return secrets.token_urlsafe(_SESSION_ID_BYTES)

    def seal(self, api_key: str, now: float | None = None, *, session_id: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        moment = int(now if now is not None else time.time())
        body = orjson.dumps({"k": api_key, "t": moment, "s": session_id})
        return b64url_text(nonce + self._aead.encrypt(nonce, body, SESSION_COOKIE.encode()))

    def open(self, sealed: str | None, now: float | None = None) -> ConsoleSession | None:
        """The session in a cookie, or None for a missing, forged, foreign or old one."""
        if not sealed or len(sealed) > 1024:
            return None
        try:
            raw = b64url_decode(sealed)
            body = self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], SESSION_COOKIE.encode()
            )
            data = orjson.loads(body)
            session = ConsoleSession(
                api_key=str(data["k"]), signed_in_at=int(data["t"]), session_id=str(data["s"])
            )
        except (ValueError, binascii.Error, InvalidTag, KeyError, TypeError):
            return None
        age = (now if now is not None else time.time()) - session.signed_in_at
        return session if 0 <= age <= self.lifetime else None

    @staticmethod
    def new_csrf_nonce() -> str:
        return secrets.token_urlsafe(32)

    def csrf_token(self, nonce: str) -> str:
        return b64url_text(hmac.new(self._csrf_key, nonce.encode(), hashlib.sha256).digest())

    def csrf_valid(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.csrf_token(nonce).encode(), token.encode())
