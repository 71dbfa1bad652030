"""API-key parsing: ``presented_digest`` accepts exactly ``wk-`` + 43 base64url
characters, answering their SHA-256 as 64 hex digits, and refuses every other string
with :class:`AuthenticationRequired` and never another exception.

Why: the digest is what the key table is searched by, before any database work; a
string that cannot be a key must cost nothing and answer the same 401 as an unknown
key (no oracle), and an exception of another kind would answer 500.
"""

from __future__ import annotations

import hashlib
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.domain.secret_shapes import KEY_PREFIX
from federation.errors import AuthenticationRequired
from federation.registry.auth import new_api_key, presented_digest

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True)
BASE64URL = string.ascii_letters + string.digits + "-_"
WELL_FORMED = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{43}")
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")

well_formed_keys = st.text(alphabet=BASE64URL, min_size=43, max_size=43).map(
    lambda body: KEY_PREFIX + body
)
# Near misses: the prefix with a body of the wrong length or alphabet, other prefixes,
# whitespace around a good key, and arbitrary text (surrogates included).
near_misses = st.one_of(
    st.text(alphabet=BASE64URL, max_size=60)
    .filter(lambda body: len(body) != 43)
    .map(lambda body: KEY_PREFIX + body),
    st.tuples(
        st.text(alphabet=BASE64URL, min_size=42, max_size=42),
        st.characters(exclude_characters=BASE64URL),
        st.integers(0, 42),
    ).map(lambda t: KEY_PREFIX + t[0][: t[2]] + t[1] + t[0][t[2] :]),
    st.tuples(
        st.sampled_from(["", "WK-", "wk_", "wk", "wlt-", "Bearer wk-"]), well_formed_keys
    ).map(lambda t: t[0] + t[1][len(KEY_PREFIX) :]),
    st.tuples(st.sampled_from([" ", "\t", "\n", "\x00"]), well_formed_keys, st.booleans()).map(
        lambda t: t[1] + t[0] if t[2] else t[0] + t[1]
    ),
    st.text(max_size=80),
    st.text(alphabet=st.characters(), max_size=80),
)


@PROPERTY
@given(well_formed_keys)
def test_a_well_formed_key_gives_its_sha256(key: str) -> None:
    digest = presented_digest(key)
    assert HEX_DIGEST.fullmatch(digest)
    assert digest == hashlib.sha256(key.encode("ascii")).hexdigest()


def test_a_generated_key_is_well_formed() -> None:
    key = new_api_key()
    assert WELL_FORMED.fullmatch(key)
    assert HEX_DIGEST.fullmatch(presented_digest(key))


@pytest.mark.parametrize("presented", [None, ""])
def test_no_key_is_refused(presented: str | None) -> None:
    with pytest.raises(AuthenticationRequired):
        presented_digest(presented)


@PROPERTY
@given(near_misses.filter(lambda text: not WELL_FORMED.fullmatch(text)))
def test_anything_else_is_refused_with_401_only(presented: str) -> None:
    with pytest.raises(AuthenticationRequired):
        presented_digest(presented)


@PROPERTY
@given(st.one_of(well_formed_keys, near_misses, st.none()))
def test_the_answer_is_a_digest_or_a_401(presented: str | None) -> None:
    try:
        digest = presented_digest(presented)
    except AuthenticationRequired:
        return
    assert HEX_DIGEST.fullmatch(digest)


def test_a_key_with_a_lone_surrogate_is_refused() -> None:
    # A str from outside (os.environ, argv with surrogateescape) may hold lone
    # surrogates, which UTF-8 cannot encode: that is not a key either.
    with pytest.raises(AuthenticationRequired):
        presented_digest(KEY_PREFIX + "a" * 42 + "\udcff")
