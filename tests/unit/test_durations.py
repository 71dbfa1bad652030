"""The duration grammar (``2h30m``), its shortest rendering, and the policy bounds."""

from __future__ import annotations

import pytest

from federation.domain.durations import DurationPolicy, format_duration, parse_duration
from federation.errors import InvalidRequest


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 15 * 60),
        ("1h", 3600),
        ("2h30m", 2 * 3600 + 30 * 60),
        ("90s", 90),
        ("1h30m15s", 3600 + 30 * 60 + 15),
        ("1h15s", 3600 + 15),
        ("45m30s", 45 * 60 + 30),
        ("120m", 7200),
    ],
)
def test_parse_accepts_the_grammar(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "30m2h",  # wrong order
        "15s1m",  # wrong order
        "1h1h",  # repeated unit
        "1h30m10m",  # repeated unit
        "",  # empty
        "h",  # unit without a number
        "-1h",  # negative
        "-90s",
        "+1h",
        "1.5h",  # fractions
        "0.5m",
        "90",  # bare number
        "3600",
        "1d",  # unknown unit
        "1H",  # units are lower case
        "1 h",
        "1h 30m",
        "1h-30m",
        "PT1H",
    ],
)
def test_parse_refuses_what_is_not_the_grammar(text: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_duration(text)
    assert raised.value.status == 400
    assert raised.value.detail is not None
    assert "15m" in raised.value.detail  # the message shows the accepted form


@pytest.mark.parametrize("text", ["\u0663h", "\uff11h", "1\u0660m"])
def test_parse_refuses_non_ascii_digits(text: str) -> None:
    # Arabic-Indic and full-width digits are not part of the grammar: `\d` must not
    # let them through, or "٣h" silently means three hours.
    with pytest.raises(InvalidRequest):
        parse_duration(text)


def test_parse_refuses_over_long_input_even_if_it_would_strip_to_a_valid_one() -> None:
    padded = " " * 40 + "1h"
    with pytest.raises(InvalidRequest):
        parse_duration(padded)


def test_parse_message_does_not_echo_a_huge_input() -> None:
    huge = "9" * 10_000 + "h"
    with pytest.raises(InvalidRequest) as raised:
        parse_duration(huge)
    assert raised.value.detail is not None
    assert len(raised.value.detail) < 300


def test_parse_refuses_too_many_digits() -> None:
    with pytest.raises(InvalidRequest):
        parse_duration("9999999h")  # seven digits of hours


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1, "1s"),
        (59, "59s"),
        (60, "1m"),
        (61, "1m1s"),
        (900, "15m"),
        (3600, "1h"),
        (3601, "1h1s"),
        (3660, "1h1m"),
        (5400, "1h30m"),
        (5415, "1h30m15s"),
        (36000, "10h"),
        (100 * 3600 + 10 * 60, "100h10m"),
    ],
)
def test_format_duration_gives_the_shortest_form(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, -1, -3600])
def test_format_duration_of_nothing(seconds: int) -> None:
    assert format_duration(seconds) == "0s"


@pytest.mark.parametrize("seconds", [1, 59, 60, 61, 3599, 3600, 3661, 7322, 86_399, 360_000])
def test_format_then_parse_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_grant_takes_the_default_when_nothing_is_asked() -> None:
    policy = DurationPolicy(default=1800, minimum=60, maximum=7200)
    grant = policy.grant(None)
    assert (grant.seconds, grant.requested, grant.capped) == (1800, 1800, False)


def test_default_policy_is_one_hour_between_one_minute_and_three_hours() -> None:
    policy = DurationPolicy()
    assert policy.grant(None).seconds == 3600
    assert policy.grant(60).seconds == 60
    assert policy.grant(3 * 3600).capped is False
    assert policy.grant(3 * 3600 + 1).seconds == 3 * 3600
    with pytest.raises(InvalidRequest):
        policy.grant(59)


def test_grant_within_bounds_is_granted_as_asked() -> None:
    policy = DurationPolicy(default=600, minimum=60, maximum=7200)
    for wanted in (60, 61, 900, 7199, 7200):
        grant = policy.grant(wanted)
        assert (grant.seconds, grant.requested, grant.capped) == (wanted, wanted, False)


def test_grant_below_minimum_is_refused_with_both_values() -> None:
    policy = DurationPolicy(default=600, minimum=120, maximum=7200)
    with pytest.raises(InvalidRequest) as raised:
        policy.grant(90)
    assert raised.value.detail is not None
    assert "1m30s" in raised.value.detail
    assert "2m" in raised.value.detail


@pytest.mark.parametrize("wanted", [0, -60])
def test_grant_of_zero_or_negative_is_refused(wanted: int) -> None:
    with pytest.raises(InvalidRequest):
        DurationPolicy().grant(wanted)


def test_grant_above_maximum_is_capped_and_says_so() -> None:
    policy = DurationPolicy(default=600, minimum=60, maximum=7200)
    grant = policy.grant(7201)
    assert (grant.seconds, grant.requested, grant.capped) == (7200, 7201, True)
    huge = policy.grant(10**9)
    assert (huge.seconds, huge.requested, huge.capped) == (7200, 10**9, True)


@pytest.mark.parametrize(
    ("default", "minimum", "maximum"),
    [
        (30, 60, 7200),  # default below minimum
        (9000, 60, 7200),  # default above maximum
        (600, 0, 7200),  # minimum not positive
        (600, -5, 7200),
        (600, 900, 300),  # minimum above maximum
    ],
)
def test_inconsistent_policy_is_a_value_error(default: int, minimum: int, maximum: int) -> None:
    with pytest.raises(ValueError, match="minimum <= default <= maximum"):
        DurationPolicy(default=default, minimum=minimum, maximum=maximum)


def test_policy_with_equal_bounds_is_allowed() -> None:
    policy = DurationPolicy(default=300, minimum=300, maximum=300)
    assert policy.grant(None).seconds == 300
    assert policy.grant(301).capped is True
