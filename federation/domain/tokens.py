"""Token claims, in the form Oz issues them (docs/concepts.md, Tokens)."""

from __future__ import annotations

import binascii
import dataclasses
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from federation._internal.encoding import URL_SAFE, b64url
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

_JTI_BYTES = 18  # 144 bits: 24 base64url characters, no padding
_JTI_BATCH = 256
_jtis: deque[str] = deque()


def new_jti() -> str:
    """144 random bits from the operating system, URL-safe."""
    # NOTE: drawn in batches: an os.urandom call per token cost a tenth of the minting
    # path. deque.popleft is atomic, so no two threads ever get the same value.
    while True:
        try:
            return _jtis.popleft()
        except IndexError:
            _refill_jtis()


def _refill_jtis() -> None:
    raw = os.urandom(_JTI_BYTES * _JTI_BATCH)
    text = binascii.b2a_base64(raw, newline=False).translate(URL_SAFE).decode("ascii")
    size = _JTI_BYTES * 4 // 3
    _jtis.extend([text[start : start + size] for start in range(0, len(text), size)])


# SECURITY: a forked child must never hand out the ids its parent holds: clear the batch.
os.register_at_fork(after_in_child=_jtis.clear)


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
    # The shape that made these claims, which encodes their payload. Not a field: set
    # on the instance by ClaimsShape.claims only, so that claims made any other way
    # (dataclasses.replace included) are encoded from their fields.
    _shape: ClassVar[ClaimsShape | None] = None

    @property
    def aud(self) -> list[str] | str:
        return [self.audience] if self.audience_as_array else self.audience

    def to_dict(self) -> dict[str, Any]:
        """The claims in the order a token carries them, absent ones left out."""
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

    def to_json(self) -> bytes:
        """The JWT payload: :meth:`to_dict` as compact JSON."""
        return orjson.dumps(self.to_dict())

    def payload(self) -> bytes:
        """The JWT payload, base64url-encoded: the JWS's second segment."""
        shape = self._shape
        if shape is not None:
            return shape.payload(self.issued_at, self.expires_at, self.jti)
        return b64url(self.to_json())


_new = object.__new__
_b2a = binascii.b2a_base64

# What lies between the fixed parts of a payload (to_dict's order: iss, sub, aud, then
# these, then the rest), with zero times and an empty jti.
_VARYING = b'"iat":0,"nbf":0,"exp":0,"jti":""'
_IAT = b'"iat":'

# One payload's times, encoded once for every token of the same second and lifetime:
# ``(iat, exp, encodings)``, where ``encodings[lead]`` is for a payload whose fixed part
# leaves the last ``lead`` bytes of ``"iat":`` unencoded (its length modulo 3). Each is
# the base64url of the whole groups of those bytes and the times up to the jti's value,
# and the bytes left over. One tuple, replaced whole, so that no thread ever reads one
# token's times with another's encoding.
_Times = tuple[int, int, tuple[tuple[bytes, bytes], ...]]


def _encode_times(issued_at: int, expires_at: int) -> _Times:
    text = f'{issued_at},"nbf":{issued_at},"exp":{expires_at},"jti":"'.encode()
    encodings = []
    for lead in range(3):
        chunk = _IAT[len(_IAT) - lead :] + text
        cut = len(chunk) // 3 * 3
        encodings.append((b64url(chunk[:cut]), chunk[cut:]))
    return issued_at, expires_at, tuple(encodings)


_last_times = _encode_times(0, 0)


class ClaimsShape:
    """What the tokens of one run, template and audience share: every claim but iat,
    nbf, exp and jti, with the JWT payload encoded but for those.

    base64url encodes each 3 bytes on their own, so the payload is encoded once up to a
    3-byte boundary before ``iat``, and once from each of the three boundaries after
    ``jti``; the times are encoded once a second. A token encodes only the few bytes
    around its jti instead of building, serializing and encoding the whole payload.
    """

    __slots__ = ("_ends", "_fields", "_head", "_lead")

    def __init__(self, base: Claims) -> None:
        """``base``: the shared claims; its times and jti are ignored."""
        # Every field, and the shape itself: claims() overwrites the times and the jti.
        self._fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(Claims)}
        self._fields["_shape"] = self
        whole = orjson.dumps({**base.to_dict(), "iat": 0, "nbf": 0, "exp": 0, "jti": ""})
        # NOTE: found, not assumed: no string value can hold the run (its quotes would be
        # escaped), so it is where to_dict put the four claims, whatever comes before.
        start = whole.index(_VARYING)
        before = whole[:start] + _IAT
        cut = len(before) // 3 * 3
        self._head = b64url(before[:cut])  # whole groups: no padding
        self._lead = len(before) - cut  # the bytes of "iat": left to _last_times
        tail = whole[start + len(_VARYING) - 1 :]  # from the jti's closing quote
        # By how many bytes the middle falls short of a whole group: the tail's first
        # bytes complete it, and the rest of the tail is encoded already.
        self._ends = tuple((tail[:short], b64url(tail[short:])) for short in range(3))

    def claims(self, issued_at: int, expires_at: int, jti: str) -> Claims:
        """Claims of this shape with these times and ``jti`` (base64url characters)."""
        # NOTE: a copy of the shared fields, not Claims(...): a third of the time, on the
        # minting path. The result is what Claims(...) would make, and equal to it.
        made = _new(Claims)
        fields = made.__dict__
        fields.update(self._fields)
        fields["issued_at"] = issued_at
        fields["expires_at"] = expires_at
        fields["jti"] = jti
        return made

    def payload(self, issued_at: int, expires_at: int, jti: str) -> bytes:
        """The base64url payload of this shape's claims with these times and ``jti``."""
        global _last_times  # a cache: see there
        times = _last_times
        if times[0] != issued_at or times[1] != expires_at:
            times = _last_times = _encode_times(issued_at, expires_at)
        encoded_times, rest = times[2][self._lead]
        middle = rest + jti.encode()
        closer, encoded_end = self._ends[-len(middle) % 3]
        encoded_middle = _b2a(middle + closer, newline=False).translate(URL_SAFE)
        return self._head + encoded_times + encoded_middle + encoded_end
