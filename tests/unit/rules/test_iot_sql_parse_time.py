"""``parse_time(pattern, ms[, zone])`` with the pattern read from the payload, as a device
may send it: Joda-Time's quoting (``''`` is a quote, in quoted text or out of it; a quote
left open runs to the end), and a pattern of more runs than the limit Undefined at once."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

MISSING = object()
MAX_PATTERN_RUNS = 100
"""The documented limit (docs/iot-sql.md): a pattern of more runs is Undefined."""


def parse_time(pattern: str, ms: int = 0) -> object:
    statement = parse("SELECT parse_time(p, m) AS x FROM '#'")
    out = evaluate(statement, Message("a/b", json.dumps({"p": pattern, "m": ms}).encode()))
    assert out is not None
    return json.loads(out.to_bytes()).get("x", MISSING)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("yyyy-MM-dd 'it''s'", "1970-01-01 it's"),  # '' inside quoted text: a quote
        ("'o''clock' H", "o'clock 0"),
        ("h 'o''clock' a", "12 o'clock AM"),
        ("yyyy''MM", "1970'01"),  # '' outside quoted text: a quote too
        ("'''yyyy'''", "'yyyy'"),  # a quote, then quoted text ending with one
        ("yyyy 'at", "1970 at"),  # a quote left open: text to the end (Joda refuses nothing)
        ("yyyy'", "1970"),
        ("yyyy 'a''b", "1970 a'b"),
        ("'at' HH:mm", "at 00:00"),
        ("[yyyy]#{MM}", "[1970]#{01}"),  # Joda has no optional sections: all text
    ],
)
def test_joda_quoting(pattern: str, expected: str) -> None:
    assert parse_time(pattern) == expected


@pytest.mark.parametrize("pattern", ["y-" * 60_000, "yM" * 60_000, "H'x'" * 30_000])
def test_a_payload_sized_pattern_of_many_runs_is_undefined_at_once(pattern: str) -> None:
    started = time.thread_time()
    assert parse_time(pattern) is MISSING
    assert time.thread_time() - started < 0.05


def _runs(n: int) -> tuple[str, str]:
    """A pattern of exactly *n* runs, letter runs and text in turn, and its output at 0."""
    letters = "yMdHmsS"
    pattern = "".join(letters[i // 2 % 7] if i % 2 == 0 else "-" for i in range(n))
    out = {"y": "1970", "M": "1", "d": "1", "H": "0", "m": "0", "s": "0", "S": "0"}
    return pattern, "".join(out.get(c, c) for c in pattern)


def test_a_pattern_of_up_to_max_pattern_runs_formats_and_one_more_is_undefined() -> None:
    pattern, expected = _runs(MAX_PATTERN_RUNS)
    assert parse_time(pattern) == expected
    pattern, _ = _runs(MAX_PATTERN_RUNS + 1)
    assert parse_time(pattern) is MISSING


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet="-:/. é[]#", max_size=20))
def test_text_without_letters_or_quotes_is_copied(text: str) -> None:
    assert parse_time(f"yyyy{text}MM") == f"1970{text}01"
