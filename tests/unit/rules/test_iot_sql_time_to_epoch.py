"""``time_to_epoch`` on hostile patterns and strings: both can come from a device (the
pattern may be a payload field), so reading one must take time linear in their length,
never the exponential backtracking a regular expression of adjacent variable-width
fields gives; and a pattern Java's ``DateTimeFormatter`` refuses is Undefined."""

from __future__ import annotations

import calendar
import json
import time
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

MISSING = object()
MAX_PATTERN_RUNS = 100
"""The documented limit (docs/iot-sql.md): a pattern of more runs is Undefined."""


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


def _cpu_seconds(timestamp: str, pattern: str) -> tuple[object, float]:
    started = time.thread_time()
    result = time_to_epoch(timestamp, pattern)
    return result, time.thread_time() - started


@pytest.mark.parametrize("pattern", ["yM" * 60_000, "y-" * 60_000, "d'x'" * 30_000])
def test_a_payload_sized_pattern_of_many_runs_is_undefined_at_once(pattern: str) -> None:
    """A 120 KB pattern from the payload, tens of thousands of letter runs: Undefined
    (more than MAX_PATTERN_RUNS runs) without compiling it, not a second of CPU per message."""
    result, spent = _cpu_seconds("2024", pattern)
    assert result is MISSING
    assert spent < 0.25


def _runs(n: int) -> tuple[str, str]:
    """A pattern of exactly *n* runs (yyyy, '-', MM, '-', dd, then quoted and plain text
    runs in turn), and a timestamp it reads as 2024-01-15."""
    extra = n - 5
    pattern = "yyyy-MM-dd" + "".join("'a'" if i % 2 == 0 else "-" for i in range(extra))
    timestamp = "2024-01-15" + "".join("a" if i % 2 == 0 else "-" for i in range(extra))
    return pattern, timestamp


def test_a_pattern_of_up_to_max_pattern_runs_reads_and_one_more_is_undefined() -> None:
    pattern, timestamp = _runs(MAX_PATTERN_RUNS)
    assert time_to_epoch(timestamp, pattern) == 1705276800000
    pattern, timestamp = _runs(MAX_PATTERN_RUNS + 1)
    assert time_to_epoch(timestamp, pattern) is MISSING


def test_a_long_literal_costs_its_length_only() -> None:
    """One run of 120,000 characters is within the run limit and reads: a string compare,
    not a regular expression of 120,000 escaped characters compiled per message."""
    pattern = "yyyy-MM-dd" + "-" * 120_000
    result, spent = _cpu_seconds("2024-01-15" + "-" * 120_000, pattern)
    assert result == 1705276800000
    assert spent < 0.1


@pytest.mark.parametrize(
    ("timestamp", "pattern"),
    [
        ("\u0662\u0660\u0662\u0664-01-15", "yyyy-MM-dd"),  # Arabic-Indic digits
        ("\uff12\uff10\uff12\uff14-01-15", "yyyy-MM-dd"),  # full-width digits
        ("2024-\u0660\u0661-15", "yyyy-MM-dd"),
        ("2024-01-15 10:2\u0966", "yyyy-MM-dd HH:mm"),  # a Devanagari zero
        ("2024-01-15+\uff10\uff11:00", "yyyy-MM-ddXXX"),
        ("2024-01-15 UTC+\u0660\u0661:00", "yyyy-MM-dd VV"),
        ("20240115\u0661", "yyyyMMddS"),
    ],
)
def test_only_ascii_digits_are_digits(timestamp: str, pattern: str) -> None:
    """Java reads the digits 0-9 only (DecimalStyle.STANDARD); Python's ``\\d`` and int()
    also take every other script's digits."""
    assert time_to_epoch(timestamp, pattern) is MISSING


@settings(max_examples=60, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=8, max_size=8))
@example(digits="00010230")
@example(digits="20240230")
@example(digits="20230431")
@example(digits="20230232")
def test_ascii_digits_read_as_the_date_they_name(digits: str) -> None:
    """The ASCII forms of the refused cases read: the date's epoch milliseconds, or
    Undefined when no such date exists (year 0, month 13, day 32). Java's SMART resolver
    takes a day of 29 to 31 past the month's end as its last day (30 February 2024 is
    29 February), as ``LocalDate.parse`` does with ``ofPattern("yyyy-MM-dd")``."""
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    if year >= 1 and 1 <= month <= 12 and 1 <= day <= 31:
        day = min(day, calendar.monthrange(year, month)[1])
        expected: object = int(datetime(year, month, day, tzinfo=UTC).timestamp()) * 1000
    else:
        expected = MISSING
    assert time_to_epoch(f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}", "yyyy-MM-dd") == expected


def test_thousands_of_unknown_zones_cost_no_zone_directory_search() -> None:
    """``VV`` reads any zone-shaped name; each one a tz database does not hold was searched
    for in every zone directory (about 0.1 ms per element of the payload)."""
    elements = [f"2024-1-1 Z{i}" for i in range(7_500)]
    payload = json.dumps({"e": elements}, separators=(",", ":")).encode()
    assert len(payload) <= 131_072
    statement = parse("SELECT (SELECT VALUE time_to_epoch(*, 'yyyy-M-d VV') FROM e) AS h FROM '#'")
    started = time.thread_time()
    out = evaluate(statement, Message("a/b", payload))
    spent = time.thread_time() - started
    assert out is not None
    assert json.loads(out.to_bytes()) == {"h": []}
    assert spent < 0.3


def test_a_fraction_of_up_to_nine_digits_reads_and_ten_is_undefined() -> None:
    """Java's ``S`` is a fraction of 1 to 9 digits: ``SSSSSSSSSS`` is a pattern its
    ``DateTimeFormatter`` refuses ("Minimum width must be from 0 to 9 inclusive")."""
    assert time_to_epoch("2024-01-15 012345678", "yyyy-MM-dd SSSSSSSSS") == 1705276800012
    assert time_to_epoch("2024-01-15 0123456789", "yyyy-MM-dd SSSSSSSSSS") is MISSING
    assert time_to_epoch("2024-01-15 " + "0" * 50, "yyyy-MM-dd " + "S" * 50) is MISSING
