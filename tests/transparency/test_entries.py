"""The canonical entry of an issued token: its exact bytes, its leaf hash, and the
strict reading that takes only those bytes back."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest

from federation.errors import InvalidRequest, LogVerificationFailed
from federation.transparency import LogEntry, token_sha256
from tests.transparency.logs import sample_entry

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
ENTRY = LogEntry(
    jti="Qm9vdHN0cmFwcGVkIGp0aQ",
    iss="https://issuer.example.test",
    sub="repo:équipe/日本:ref:main",
    aud="sts.amazonaws.com",
    iat=1790000000,
    exp=1790000900,
    kid="key-2026-11",
    alg="ES256",
    run_id="run-42",
    principal="user-7",
    team=None,
    token_sha256=token_sha256(TOKEN),
)
ENCODED = (
    '{"alg":"ES256","aud":"sts.amazonaws.com","exp":1790000900,"iat":1790000000,'
    '"iss":"https://issuer.example.test","jti":"Qm9vdHN0cmFwcGVkIGp0aQ","kid":"key-2026-11",'
    '"principal":"user-7","run_id":"run-42","sub":"repo:équipe/日本:ref:main","team":null,'
    f'"token_sha256":"{hashlib.sha256(TOKEN.encode()).hexdigest()}"}}'
).encode()


def test_the_canonical_bytes() -> None:
    assert ENTRY.encode() == ENCODED
    assert ENTRY.leaf_hash() == hashlib.sha256(b"\x00" + ENCODED).digest()
    assert LogEntry.decode(ENCODED) == ENTRY


def test_the_record_holds_a_digest_of_the_token_never_the_token_nor_an_email() -> None:
    assert TOKEN.encode() not in ENCODED
    assert {field.name for field in dataclasses.fields(LogEntry)}.isdisjoint({"email", "token"})
    assert ENTRY.token_sha256 == hashlib.sha256(TOKEN.encode("ascii")).hexdigest()


@pytest.mark.parametrize(
    ("subject", "written"),
    [
        ('a "quote"', r"a \"quote\""),
        ("back\\slash", r"back\\slash"),
        ("tab\tnew\nline\rfeed\fbell\b", r"tab\tnew\nline\rfeed\fbell\b"),
        ("unit\x1fsep\x00nul", r"unit\u001fsep\u0000nul"),  # lower-case hex
        ("del\x7f & <html> \u2028", "del\x7f & <html> \u2028"),  # left alone
    ],
)
def test_strings_are_escaped_only_where_json_requires(subject: str, written: str) -> None:
    entry = dataclasses.replace(ENTRY, sub=subject)
    assert f'"sub":"{written}"'.encode() in entry.encode()
    assert LogEntry.decode(entry.encode()) == entry


@pytest.mark.parametrize(
    "variant",
    [
        ENCODED.replace(b",", b", "),  # whitespace
        ENCODED + b"\n",
        b" " + ENCODED,
        ENCODED.replace(
            b'"alg":"ES256","aud":"sts.amazonaws.com"', b'"aud":"sts.amazonaws.com","alg":"ES256"'
        ),
        ENCODED.replace("é".encode(), b"\\u00e9"),  # escaped where it need not be
        ENCODED.replace(b"1790000000", b"1790000000.0"),
        ENCODED.replace(b"1790000000", b"1.79e9"),
        ENCODED.replace(b'"team":null', b'"team":false'),
        ENCODED.replace(b'"team":null,', b""),  # a member missing
        ENCODED.replace(b'"team":null', b'"team":null,"email":"a@b.example"'),  # one more
        ENCODED.replace(b'"team":null', b'"team":null,"team":null'),  # twice
        ENCODED.replace(b'"run_id":"run-42"', b'"run_id":""'),
        ENCODED.replace("é".encode(), b"\xe9"),  # not UTF-8
        b"[]",
        b"",
    ],
)
def test_anything_but_the_canonical_bytes_is_refused(variant: bytes) -> None:
    with pytest.raises(LogVerificationFailed, match="not a log entry"):
        LogEntry.decode(variant)


@pytest.mark.parametrize(
    "change",
    [
        {"iat": -1},
        {"exp": 2**53},
        {"iat": True},
        {"iat": 1.5},
        {"sub": ""},
        {"aud": ["sts.amazonaws.com"]},
        {"team": ""},
        {"token_sha256": TOKEN},
        {"token_sha256": "A" * 64},
    ],
)
def test_fields_are_checked(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match="a log entry's"):
        dataclasses.replace(ENTRY, **change)


def test_what_utf_8_cannot_hold_or_a_bundle_cannot_carry_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="not valid Unicode"):
        dataclasses.replace(ENTRY, sub="half a pair \ud800").encode()
    with pytest.raises(InvalidRequest, match="at most 65535 bytes"):
        dataclasses.replace(ENTRY, sub="x" * 70_000).encode()


def test_the_encoding_is_json_dumps_canonical_form_for_every_code_point() -> None:
    """The entry's bytes are what ``json.dumps`` writes with sorted keys, no whitespace
    and no ASCII escaping, for every code point a string can hold (a few thousand per
    entry), so that the documented form and the bytes never part."""
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(points), 4096):
        text = "".join(points[start : start + 4096])
        entry = sample_entry(1, subject=text)
        fields = {name: getattr(entry, name) for name in sorted(entry.__dataclass_fields__)}
        expected = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        assert entry.encode() == expected.encode("utf-8")
