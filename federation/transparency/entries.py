"""The log's entries: one canonical JSON record per issued token.

An entry records who got which token, for what, until when: ``jti``, ``iss``, ``sub``,
``aud`` (the audience, a string), ``iat``, ``exp``, ``kid``, ``alg``, ``run_id``,
``principal`` (the principal's uid), ``team`` (the team's uid, or null) and
``token_sha256``, the SHA-256 of the compact token in lower-case hex. Never the token
itself, which is a bearer credential, and never an email address.

The canonical encoding, the bytes the log hashes, is exactly:

- one JSON object with those twelve members, no other, each once;
- members sorted by key (all keys are ASCII, so by byte);
- no whitespace outside strings: ``{"alg":"ES256","aud":...}``;
- strings in UTF-8, escaped only where JSON requires it: ``"`` and ``\\`` as ``\\"``
  and ``\\\\``; U+0008, U+0009, U+000A, U+000C, U+000D as ``\\b \\t \\n \\f \\r``; the
  other code points below U+0020 as ``\\u00xx`` in lower-case hex; everything else,
  non-ASCII included, as itself;
- ``iat`` and ``exp`` as decimal integers without sign or leading zeros, below 2**53;
  ``team`` as ``null`` when the token has none.

For these values this is also the RFC 8785 (JSON Canonicalization Scheme) form, so any
JCS implementation reproduces the bytes. The leaf hash is ``SHA-256(0x00 || bytes)``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, fields
from typing import Any

import orjson

from federation.errors import InvalidRequest, LogVerificationFailed
from federation.transparency.merkle import leaf_hash
from federation.transparency.tiles import MAX_ENTRY_SIZE

MAX_TIME = 2**53 - 1  # the largest integer every JSON reader holds exactly
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def token_sha256(token: str) -> str:
    """The SHA-256 of a compact token, in lower-case hex: how an entry names it."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class LogEntry:
    """The record of one issued token (see the module's docstring for its encoding)."""

    jti: str
    iss: str
    sub: str
    aud: str
    iat: int
    exp: int
    kid: str
    alg: str
    run_id: str
    principal: str
    team: str | None
    token_sha256: str

    def __post_init__(self) -> None:
        for name in _TEXT:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidRequest(f"a log entry's {name} is a non-empty string")
        if self.team is not None and (not isinstance(self.team, str) or not self.team):
            raise InvalidRequest("a log entry's team is a non-empty string or null")
        for name in ("iat", "exp"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= MAX_TIME:
                raise InvalidRequest(f"a log entry's {name} is an integer from 0 to 2**53 - 1")
        if not _SHA256_HEX.fullmatch(self.token_sha256):
            raise InvalidRequest("a log entry's token_sha256 is 64 lower-case hex digits")

    def encode(self) -> bytes:
        """The canonical bytes of the entry: what the log stores, serves and hashes."""
        record = {name: getattr(self, name) for name in _KEYS}
        try:
            # NOTE: orjson writes exactly the form above (sorted keys, no whitespace,
            # UTF-8, the escapes JSON requires); tests hold it to json.dumps's output
            data = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # a lone surrogate: no UTF-8 holds it
            raise InvalidRequest("a log entry's text is not valid Unicode") from None
        if len(data) > MAX_ENTRY_SIZE:
            raise InvalidRequest(f"a log entry is at most {MAX_ENTRY_SIZE} bytes encoded")
        return data

    def leaf_hash(self) -> bytes:
        """``SHA-256(0x00 || encode())``: the entry's leaf in the Merkle tree."""
        return leaf_hash(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> LogEntry:
        """The entry whose canonical bytes are ``data``; :class:`LogVerificationFailed`
        for anything else (other members, another order, spacing or escaping)."""
        try:
            record = json.loads(data.decode("utf-8"), object_pairs_hook=_unique)
            if not isinstance(record, dict) or set(record) != set(_KEYS):
                raise InvalidRequest(f"a log entry has exactly the members {', '.join(_KEYS)}")
            entry = cls(**record)
        except (ValueError, InvalidRequest) as exc:  # UnicodeDecodeError, JSONDecodeError
            raise LogVerificationFailed(f"not a log entry: {_reason(exc)}") from exc
        if entry.encode() != data:
            raise LogVerificationFailed("not a log entry: not in the canonical encoding")
        return entry


_KEYS = tuple(sorted(field.name for field in fields(LogEntry)))
_TEXT = ("jti", "iss", "sub", "aud", "kid", "alg", "run_id", "principal")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        raise InvalidRequest("a member appears twice")
    return record


def _reason(exc: Exception) -> str:
    if isinstance(exc, InvalidRequest):
        return exc.detail or exc.title
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    return "not JSON"
