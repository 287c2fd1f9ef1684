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


def _each(sql: str, elements: list[str]) -> tuple[list[object], float]:
    """``sql`` (a nested SELECT over ``e``) on a payload of *elements*, within 128 KiB; its
    result and the CPU time it took."""
    payload = json.dumps({"e": elements}, separators=(",", ":")).encode()
    assert len(payload) <= 131_072
    statement = parse(sql)
    started = time.thread_time()
    out = evaluate(statement, Message("a/b", payload))
    spent = time.thread_time() - started
    assert out is not None
    return json.loads(out.to_bytes())["h"], spent


def test_thousands_of_unknown_zones_cost_no_zone_directory_search() -> None:
    """Each zone name a tz database does not hold was searched for in every zone directory
    (about 0.1 ms): 14,000 of them in one payload cost about a second and a half."""
    zones = [f"Z{i}" for i in range(14_000)]
    sql = "SELECT (SELECT VALUE parse_time('yyyy', 0, *) FROM e) AS h FROM '#'"
    result, spent = _each(sql, zones)
    assert result == []
    assert spent < 0.5


def test_known_zones_in_turn_are_read_from_their_files_once() -> None:
    """More zones in turn than ``ZoneInfo`` keeps: each was read from its file again."""
    zones = [f"Etc/GMT{sign}{h}" for h in range(1, 13) for sign in "+-"] * 400
    sql = "SELECT (SELECT VALUE parse_time('yyyy-MM-dd HH Z', 0, *) FROM e) AS h FROM '#'"
    result, spent = _each(sql, zones)
    assert result[:2] == ["1969-12-31 23 -0100", "1970-01-01 01 +0100"]  # POSIX signs
    assert result == result[:24] * 400
    assert spent < 0.3
