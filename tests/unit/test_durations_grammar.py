"""The Oz CLI's duration grammar (Rust humantime 2.1), as ``parse_human_duration``
reads it: humantime's documented examples and unit table, its whitespace, the
nanoseconds of sub-second units cut to whole seconds, the i32 bound, and garbage."""

from __future__ import annotations

import pytest

from federation.domain.durations import MAX_REQUEST_SECONDS, parse_duration, parse_human_duration
from federation.errors import InvalidRequest

MINUTE, HOUR, DAY, WEEK = 60, 3600, 86_400, 7 * 86_400
MONTH, YEAR = 2_630_016, 31_557_600  # 30.44 and 365.25 days


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        # The examples of humantime's documentation and README.
        ("2h 37min", 2 * HOUR + 37 * MINUTE),
        ("32ms", 0),  # 32 000 000 ns: no whole second
        ("1hour 12min 5s", HOUR + 12 * MINUTE + 5),
        ("15days 2min 2s", 15 * DAY + 2 * MINUTE + 2),
        ("12h 5min 2ns", 12 * HOUR + 5 * MINUTE),
        ("1y 2M 3w", YEAR + 2 * MONTH + 3 * WEEK),
        # The examples of the Oz CLI and of this project's documentation.
        ("1h", HOUR),
        ("30m", 30 * MINUTE),
        ("1h 30m", 90 * MINUTE),
        ("2h30m", 150 * MINUTE),
        ("30min", 30 * MINUTE),
        ("1hour", HOUR),
        ("90s", 90),
        ("15m", 15 * MINUTE),
        ("1h30m15s", HOUR + 30 * MINUTE + 15),
        # humantime's own tests: combinations and whitespace.
        ("20 min 17 nsec ", 20 * MINUTE),
        ("2h 15m", 2 * HOUR + 15 * MINUTE),
        ("1 h", HOUR),  # whitespace between a number and its unit
        ("1 0s", 10),  # and inside a number, as humantime reads it
        ("\t1h\n30m ", 90 * MINUTE),
        ("\u3000 1h\u00a0", HOUR),  # Unicode whitespace, as Rust's is_whitespace
        # Repeated units and any order add up, as in humantime.
        ("30m 2h", 150 * MINUTE),
        ("1h1h", 2 * HOUR),
        # Sub-second units add nanoseconds; the total is cut to whole seconds.
        ("1s 999ms 999999999ns", 2),
        ("999ms", 0),
        ("1000ms", 1),
        ("1500000us", 1),
        ("0s", 0),
    ],
)
def test_documented_and_combined_forms(text: str, seconds: int) -> None:
    assert parse_human_duration(text) == seconds


@pytest.mark.parametrize(
    ("unit", "seconds_per_unit"),
    [
        *((unit, 0) for unit in ("nanos", "nsec", "ns", "usec", "us", "millis", "msec", "ms")),
        *((unit, 1) for unit in ("seconds", "second", "secs", "sec", "s")),
        *((unit, MINUTE) for unit in ("minutes", "minute", "min", "mins", "m")),
        *((unit, HOUR) for unit in ("hours", "hour", "hr", "hrs", "h")),
        *((unit, DAY) for unit in ("days", "day", "d")),
        *((unit, WEEK) for unit in ("weeks", "week", "w")),
        *((unit, MONTH) for unit in ("months", "month", "M")),
        *((unit, YEAR) for unit in ("years", "year", "y")),
    ],
)
def test_every_unit_of_humantime(unit: str, seconds_per_unit: int) -> None:
    assert parse_human_duration(f"7{unit}") == 7 * seconds_per_unit


def test_sub_second_units_add_up_to_seconds() -> None:
    assert parse_human_duration("1000000000ns") == 1
    assert parse_human_duration("1000000us") == 1
    assert parse_human_duration("1000msec") == 1
    assert parse_human_duration("500ms 500ms") == 1


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty
        "   ",
        "90",  # a number without a unit
        "10 months 1",
        "h",  # a unit without a number
        "1x",  # unknown units
        "10nights",
        "1H",  # units are case-sensitive: M is a month, H nothing
        "1S",
        "1µs",  # not in humantime 2.1
        "1.5h",  # no fractions
        "-1h",  # no signs
        "+1h",
        "1h-30m",
        "1h,30m",
        "1h 30 m in",  # a unit broken into words
        "PT1H",  # ISO 8601 is not humantime
        "\u0663h",  # Arabic-Indic digit
        "\uff11h",  # full-width digit
        "1\u200bh",  # a zero-width space is not whitespace to Rust
    ],
)
def test_garbage_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_human_duration(text)
    detail = raised.value.detail
    assert detail is not None
    assert detail.startswith("duration is not valid")
    assert "15m" in detail  # the message shows the accepted form
    assert "\n" not in detail


def test_a_huge_input_is_refused_and_not_echoed() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_human_duration("9" * 10_000 + "h")
    assert raised.value.detail is not None
    assert len(raised.value.detail) < 200


def test_the_i32_bound_of_the_oz_client() -> None:
    assert MAX_REQUEST_SECONDS == 2**31 - 1
    assert parse_human_duration(f"{MAX_REQUEST_SECONDS}s") == MAX_REQUEST_SECONDS
    assert parse_human_duration("68y") == 68 * YEAR
    for text in (f"{MAX_REQUEST_SECONDS + 1}s", "69y", "100 years", "9999999999999999999w"):
        with pytest.raises(InvalidRequest, match="out of bounds"):
            parse_human_duration(text)


@pytest.mark.parametrize("text", ["15m", "1h", "2h30m", "90s", "1h30m15s", "0s", "999999h"])
def test_the_canonical_grammar_is_a_subset_read_alike(text: str) -> None:
    # One parser: whatever the API's grammar takes, the CLI's reads the same way
    # (up to the CLI's i32 bound).
    seconds = parse_duration(text)
    if seconds <= MAX_REQUEST_SECONDS:
        assert parse_human_duration(text) == seconds


@pytest.mark.parametrize("text", ["1h 30m", "30min", "1hour", "1d", "30m2h", "1h1h", "500ms"])
def test_the_api_keeps_the_canonical_grammar(text: str) -> None:
    parse_human_duration(text)  # the CLI takes it
    with pytest.raises(InvalidRequest):
        parse_duration(text)  # the HTTP API and the settings do not
