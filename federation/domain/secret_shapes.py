"""What the issuer's secrets look like, and how a value of their shape is hidden.

Three kinds of secret travel to and from the issuer, each with a shape of its own:

* an API key: ``wk-`` and 43 base64url characters (256 random bits, unpadded);
* a run's workload token: ``wlt-`` and 43 base64url characters, made the same way;
* a JWT: three base64url segments, the first a JSON header (``eyJ``, which is ``{"``
  encoded), the last empty for an unsigned token; an encrypted one has five.

:mod:`federation.registry.auth` makes and checks keys and tokens with these shapes. Every
answer and every log line that could carry something a client sent (a problem body, a
GraphQL error, a console page, the access log, the server's own log) passes through
:func:`redact`, which replaces any run of text of one of these shapes with
:data:`REDACTED`, wherever it stands in the text: a secret sent in the wrong place (as a
run id, in a path, as a team, as a JSON field name) is never repeated back or written
down. Request bodies refuse such values outright (:func:`secret_kind`), so that none is
stored in the clear where a secret does not belong.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

KEY_PREFIX = "wk-"
WORKLOAD_TOKEN_PREFIX = "wlt-"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32  # 256 random bits in each API key and workload token
SECRET_CHARACTERS = 43  # SECRET_BYTES in base64url without padding
JWT_HEADER_START = "eyJ"  # '{"' in base64url: how every JOSE header begins
REDACTED = "[redacted]"

_B64URL = "[A-Za-z0-9_-]"
_RANDOM = f"{_B64URL}{{{SECRET_CHARACTERS}}}"
# NOTE: the alphabet too, not only the length: what cannot be a key is refused before
# any lookup (and a string Python decoded with surrogateescape never reaches the hash)
API_KEY = re.compile(re.escape(KEY_PREFIX) + _RANDOM)
WORKLOAD_TOKEN = re.compile(re.escape(WORKLOAD_TOKEN_PREFIX) + _RANDOM)
_SEGMENT = f"{_B64URL}*"
JWT = re.compile(rf"{JWT_HEADER_START}{_SEGMENT}\.{_B64URL}+\.{_SEGMENT}(?:\.{_SEGMENT}){{0,2}}")

# Within longer text: a key or token runs on while the alphabet does (a secret with
# something glued after it is hidden whole), and nothing before it has to be a boundary.
_ANYWHERE = re.compile(
    rf"(?:{re.escape(KEY_PREFIX)}|{re.escape(WORKLOAD_TOKEN_PREFIX)}){_RANDOM}{_SEGMENT}"
    rf"|{JWT.pattern}"
)
_KINDS = ((KEY_PREFIX, "an API key"), (WORKLOAD_TOKEN_PREFIX, "a workload token"))


def _maybe(text: str) -> bool:
    """Whether ``text`` can hold a secret at all: three substring tests, far cheaper
    than the expression, decide for nearly every value."""
    return KEY_PREFIX in text or WORKLOAD_TOKEN_PREFIX in text or JWT_HEADER_START in text


def redact(text: str, keep: Collection[str] = ()) -> str:
    """``text`` with every run of a secret's shape replaced by :data:`REDACTED`; a run
    equal to one of ``keep`` (a secret a page exists to show once) stays."""
    if not _maybe(text):
        return text
    if keep:
        return _ANYWHERE.sub(lambda found: found[0] if found[0] in keep else REDACTED, text)
    return _ANYWHERE.sub(REDACTED, text)


def redact_json(value: object) -> object:
    """A JSON-like value with :func:`redact` applied to every string in it, object keys
    included; other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k) if isinstance(k, str) else k: redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(item) for item in value]
    return value


def secret_kind(text: str) -> str | None:
    """What secret ``text`` holds (``"an API key"``, ``"a workload token"``, ``"a
    JWT"``), or None when it holds none."""
    if not _maybe(text):
        return None
    found = _ANYWHERE.search(text)
    if found is None:
        return None
    for prefix, kind in _KINDS:
        if found[0].startswith(prefix):
            return kind
    return "a JWT"


def find_secret(value: object) -> tuple[str, str] | None:
    """The first place in a JSON-like value that holds a secret, and what it holds: the
    dotted path of the field (``"a field name"`` when a name is the secret itself)."""
    found = _find(value)
    if found is None:
        return None
    path, kind = found
    if path is None:
        return "a field name", kind
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return where.lstrip(".") or "the value", kind


def _find(value: object) -> tuple[list[str | int] | None, str] | None:
    """The path (innermost first... reversed on the way out) and kind of the first
    secret in ``value``; a path of None when a field name is the secret."""
    if isinstance(value, str):
        kind = secret_kind(value)
        return None if kind is None else ([], kind)
    items: Iterable[tuple[str | int, object]]
    if isinstance(value, dict):
        for key in value:
            kind = secret_kind(str(key))
            if kind is not None:
                return None, kind
        items = ((str(key), item) for key, item in value.items())
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for part, item in items:
        found = _find(item)
        if found is not None:
            path, kind = found
            return (None if path is None else [part, *path]), kind
    return None
