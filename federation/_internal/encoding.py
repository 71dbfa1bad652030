"""base64url without padding (RFC 7515 §2): the project's one helper for it.

Tokens, JWKs, thumbprints, key-encryption keys, console cookies and list cursors all
use this form; each reads and writes it here.
"""

from __future__ import annotations

import base64
import binascii

# +/ to -_ in one pass over the standard alphabet's output (cheaper than the stdlib's
# urlsafe_b64encode on the minting path, which uses this table directly).
URL_SAFE = bytes.maketrans(b"+/", b"-_")


def b64url(data: bytes) -> bytes:
    """``data`` in base64url without padding: one pass maps ``+/`` to ``-_`` and drops
    the padding and the newline."""
    return binascii.b2a_base64(data).translate(URL_SAFE, b"=\n")


def b64url_text(data: bytes) -> str:
    """:func:`b64url` as ASCII text."""
    return b64url(data).decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """The bytes of unpadded (or padded) base64url ``text``; ``ValueError`` (a
    ``binascii.Error`` or ``UnicodeEncodeError``) when it is not base64url."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
