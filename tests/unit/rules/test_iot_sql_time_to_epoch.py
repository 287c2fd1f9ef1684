"""``time_to_epoch`` on hostile patterns and strings: both can come from a device (the
pattern may be a payload field), so reading one must take time linear in their length,
never the exponential backtracking a regular expression of adjacent variable-width
fields gives; and a pattern Java's ``DateTimeFormatter`` refuses is Undefined."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

MISSING = object()


def time_to_epoch(timestamp: str, pattern: str) -> object:
    """``time_to_epoch(t, p)`` with both read from the payload, as a device sends them."""
    statement = parse("SELECT time_to_epoch(t, p) AS x FROM '#'")
    payload = json.dumps({"t": timestamp, "p": pattern}).encode()
    out = evaluate(statement, Message("a/b", payload))
    assert out is not None
    return json.loads(out.to_bytes()).get("x", MISSING)


@pytest.mark.parametrize(
    ("timestamp", "pattern"),
    [
        ("1" * 45 + "x", "dH" * 15),  # adjacent one-or-two-digit fields
        ("1" * 200 + "x", "yu" * 12),  # adjacent years of 1 to 9 digits
        ("a" * 20_000 + "!", "VVzVV"),  # adjacent zone names
        ("a" * 20_000 + "!", "VV'/'VV'/'VV"),
        ("+01" * 40 + "!", "Xx" * 20),  # adjacent offsets
    ],
)
def test_a_hostile_pattern_and_string_answer_at_once(timestamp: str, pattern: str) -> None:
    started = time.perf_counter()
    assert time_to_epoch(timestamp, pattern) is MISSING
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("timestamp", "pattern", "expected"),
    [
        # Java's adjacent value parsing: a variable-width year leaves the fixed widths
        # after it their digits
        ("20240115", "yyyyMMdd", 1705276800000),
        ("20240115102030", "yyyyMMddHHmmss", 1705314030000),
        ("2024-01-15 America/New_York", "yyyy-MM-dd VV", 1705294800000),
        ("2024-01-15T10:20:30+01:00", "yyyy-MM-dd'T'HH:mm:ssXXX", 1705310430000),
        ("2024-01-15 it's", "yyyy-MM-dd 'it''s'", 1705276800000),
    ],
)
def test_ordinary_patterns_read_as_before(timestamp: str, pattern: str, expected: int) -> None:
    assert time_to_epoch(timestamp, pattern) == expected


@pytest.mark.parametrize("pattern", ["'yyyy-MM-dd", "yyyy-MM-dd'", "yyyy-MM-dd 'T"])
def test_an_unterminated_quote_is_undefined(pattern: str) -> None:
    """Java refuses the pattern ("Pattern ends with an incomplete string literal"); the
    quote is not text to match."""
    timestamp = pattern.replace("yyyy", "2024").replace("MM", "01").replace("dd", "15")
    assert time_to_epoch(timestamp, pattern) is MISSING


@settings(max_examples=150, deadline=None)
@given(
    pattern=st.lists(
        st.sampled_from(["y", "yyyy", "u", "M", "MM", "d", "H", "h", "m", "s", "S", "a"])
        | st.sampled_from(["VV", "z", "X", "xx", "Z", "-", ":", " ", "'T'"]),
        min_size=1,
        max_size=24,
    ).map("".join),
    timestamp=st.text(alphabet="0123456789aAZ+-:/ ", min_size=0, max_size=400),
)
def test_any_pattern_on_any_string_answers_quickly(pattern: str, timestamp: str) -> None:
    started = time.perf_counter()
    time_to_epoch(timestamp, pattern)
    assert time.perf_counter() - started < 0.5


def test_a_year_of_ten_letters_or_more_is_undefined() -> None:
    """``yyyyyyyyyy`` asks for a year of at least 10 digits, which no date holds; it was
    a regular expression ``re`` refused (an error failing the message)."""
    assert time_to_epoch("0000002024-01-15", "yyyyyyyyyy-MM-dd") is MISSING
    assert time_to_epoch("", "y" * 40) is MISSING
