"""How the CLI writes an issued token's expiry: as the Oz client writes a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from federation.cli.output import rfc3339


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC), "2026-12-01T10:00:00+00:00"),
        (datetime(2026, 12, 1, 10, 0, 0, 250_000, tzinfo=UTC), "2026-12-01T10:00:00.250+00:00"),
        (datetime(2026, 12, 1, 10, 0, 0, 123_456, tzinfo=UTC), "2026-12-01T10:00:00.123456+00:00"),
        (
            datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2))),
            "2026-12-01T10:00:00+00:00",
        ),
        (datetime(2026, 12, 1, 10, 0, 0), "2026-12-01T10:00:00+00:00"),  # naive: UTC
    ],
)
def test_utc_with_a_fraction_only_when_there_is_one(moment: datetime, text: str) -> None:
    assert rfc3339(moment) == text
