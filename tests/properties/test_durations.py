"""Durations: ``format_duration`` and ``parse_duration`` are inverse over every whole
number of seconds the grammar can express, and anything outside the grammar is refused
with :class:`InvalidRequest` and nothing else.

Why: a client-sent duration that slipped through as another exception would answer 500
instead of 400, and a round trip that drifts would grant a lifetime nobody asked for.
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.domain.durations import format_duration, parse_duration
from federation.errors import InvalidRequest

# The largest duration the grammar can write: 6 digits of hours, then 59m59s.
MAX_SECONDS = 999_999 * 3600 + 59 * 60 + 59
PROPERTY = settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
# Characters a duration is written with; everything else must be refused.
GRAMMAR_CHARS = frozenset("0123456789hms")
CANONICAL = re.compile(r"(?:[1-9][0-9]*h)?(?:[1-5]?[0-9]m)?(?:[1-5]?[0-9]s)?")


@PROPERTY
@given(st.integers(min_value=0, max_value=MAX_SECONDS))
def test_format_then_parse_is_the_identity(seconds: int) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
    # The shortest form: no zero parts, minutes and seconds below 60.
    assert CANONICAL.fullmatch(text) or text == "0s"


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 61, 3599, 3600, 3661, 86_400, MAX_SECONDS])
def test_format_then_parse_at_the_edges(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@PROPERTY
@given(
    st.one_of(st.none(), st.integers(0, 999_999)),
    st.one_of(st.none(), st.integers(0, 9_999_999)),
    st.one_of(st.none(), st.integers(0, 999_999_999)),
)
def test_every_spelling_in_the_grammar_parses_to_its_sum(
    hours: int | None, minutes: int | None, secs: int | None
) -> None:
    text = "".join(
        f"{value}{unit}"
        for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s"))
        if value is not None
    )
    if not text:
        with pytest.raises(InvalidRequest):
            parse_duration(text)
        return
    assert parse_duration(text) == (hours or 0) * 3600 + (minutes or 0) * 60 + (secs or 0)


@PROPERTY
@given(st.text(max_size=40))
def test_any_text_parses_or_is_an_invalid_request(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except InvalidRequest:
        return
    # Whatever was accepted is a non-negative count that formats back to itself.
    assert seconds >= 0
    assert parse_duration(format_duration(seconds)) == seconds
    assert set(text.strip()) <= GRAMMAR_CHARS


@PROPERTY
@given(
    st.text(min_size=1, max_size=30).filter(
        lambda text: any(not char.isspace() and char not in GRAMMAR_CHARS for char in text)
    )
)
def test_a_character_outside_the_grammar_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_duration(text)


@PROPERTY
@given(st.lists(st.sampled_from("hms"), min_size=2, max_size=3), st.integers(1, 99))
def test_units_out_of_order_or_repeated_are_refused(units: list[str], value: int) -> None:
    order = "hms"
    if all(order.index(a) < order.index(b) for a, b in itertools.pairwise(units)):
        return  # in order and distinct: that is the grammar
    with pytest.raises(InvalidRequest):
        parse_duration("".join(f"{value}{unit}" for unit in units))


@PROPERTY
@given(st.text(alphabet="0123456789hms ", min_size=33, max_size=60))
def test_text_over_32_characters_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_duration(text)


@PROPERTY
@given(
    st.text(
        alphabet="".join(chr(c) for c in range(0x660, 0x66A)) + "\uff10\u0966",
        min_size=1,
        max_size=6,
    ),
    st.sampled_from("hms"),
)
def test_non_ascii_digits_are_refused(digits: str, unit: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_duration(f"{digits}{unit}")
