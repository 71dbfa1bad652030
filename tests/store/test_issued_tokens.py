"""The audit log read back: `issued_tokens` filters and pages the issued tokens, newest
first, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from federation.errors import InvalidRequest
from federation.registry.audit import issued_tokens
from federation.store import PageRequest, Store
from federation.store.models import IssuedToken

START = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)

# (jti, run, principal, audience), oldest first.
ROWS = [
    ("j1", "r1", "u1", "sts.amazonaws.com"),
    ("j2", "r1", "u1", "https://example.com"),
    ("j3", "r2", "u2", "sts.amazonaws.com"),
    ("j4", "r1", "u1", "sts.amazonaws.com"),
    ("j5", "r3", "u1", "sts.amazonaws.com"),
]


@pytest.fixture
def audit(db: Store) -> Store:
    with db.session() as session:
        for n, (jti, run_id, principal_uid, audience) in enumerate(ROWS):
            issued_at = START + timedelta(minutes=n)
            session.add(
                IssuedToken(
                    jti=jti,
                    run_id=run_id,
                    principal_uid=principal_uid,
                    team_uid="t1",
                    subject=f"user:{principal_uid}",
                    audience=audience,
                    alg="ES256",
                    kid="k1",
                    issued_at=issued_at,
                    expires_at=issued_at + timedelta(hours=1),
                    api_key_id="ak_1",
                    trace_id=None,
                )
            )
            # One flush per row: seq follows the order of issue, as it does when issued.
            session.flush()
    return db


def _jtis(store: Store, **filters: str) -> list[str]:
    with store.session() as session:
        return [row.jti for row in issued_tokens(session, PageRequest(), **filters).items]


def test_every_token_newest_first_without_filters(audit: Store) -> None:
    assert _jtis(audit) == ["j5", "j4", "j3", "j2", "j1"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"run_id": "r1"}, ["j4", "j2", "j1"]),
        ({"principal_uid": "u1"}, ["j5", "j4", "j2", "j1"]),
        ({"audience": "https://example.com"}, ["j2"]),
        ({"run_id": "r1", "audience": "sts.amazonaws.com"}, ["j4", "j1"]),
        ({"principal_uid": "u2", "run_id": "r1"}, []),
        # Exact matches only: no prefix, no pattern.
        ({"audience": "sts"}, []),
        ({"run_id": "r%"}, []),
    ],
)
def test_each_filter_given_must_match_exactly(
    audit: Store, filters: dict[str, str], expected: list[str]
) -> None:
    assert _jtis(audit, **filters) == expected


def test_pages_follow_the_cursor_within_the_filters(audit: Store) -> None:
    seen: list[str] = []
    cursor: str | None = None
    flags: list[bool] = []
    with audit.session() as session:
        while True:
            page = issued_tokens(session, PageRequest(limit=2, cursor=cursor), principal_uid="u1")
            seen += [row.jti for row in page.items]
            flags.append(page.has_next_page)
            if not page.has_next_page:
                break
            cursor = page.next_cursor
    assert seen == ["j5", "j4", "j2", "j1"]
    assert flags == [True, False]


def test_a_foreign_cursor_is_refused(audit: Store) -> None:
    with audit.session() as session, pytest.raises(InvalidRequest):
        issued_tokens(session, PageRequest(cursor="bm90LWEtY3Vyc29y"))
