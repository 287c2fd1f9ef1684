"""String functions count as Java's ``String`` does, in UTF-16 code units: a character
past U+FFFF (an emoji) is two. The rules engine runs on the JVM; measured with OpenJDK
17.0.15 on ``s = "a\\uD83D\\uDE00b\\uD83D\\uDE01c"`` (``a😀b😁c``): ``s.length()`` is 7,
``s.indexOf("b")`` 3, ``s.indexOf("😁")`` 4, ``s.indexOf("\\uDE00")`` 2,
``s.substring(1, 3)`` is ``😀``, ``s.substring(3)`` ``b😁c``, ``s.substring(1, 2)`` the lone
``\\uD83D`` and ``s.charAt(2)`` the lone ``\\uDE00``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

S = "a\U0001f600b\U0001f601c"


def value(expr: str, **fields: str) -> object:
    out = evaluate(parse(f"SELECT {expr} AS x FROM '#'"), Message("t", json.dumps(fields)))
    assert out is not None
    return json.loads(out.to_bytes()).get("x", "<undefined>")


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("length(s)", 7),
        ("indexof(s, 'b')", 3),
        ("indexof(s, t)", 4),
        ("indexof(s, low)", 2),
        ("substring(s, 1, 3)", "\U0001f600"),
        ("substring(s, 3)", "b\U0001f601c"),
        ("substring(s, 1, 2)", "\ud83d"),
        ("get(s, 2)", "\ude00"),
        ("get(s, 3)", "b"),
        ("length('abc')", 3),
    ],
)
def test_strings_count_utf16_units_as_java(expr: str, expected: object) -> None:
    assert value(expr, s=S, t="\U0001f601", low="\ude00") == expected


def utf16(text: str) -> list[int]:
    data = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


texts = st.text(st.sampled_from(["a", "é", "\u4e2d", "\U0001f600", "\U00010348"]), max_size=8)


@settings(max_examples=150, deadline=None)
@given(texts, st.integers(-2, 18), st.integers(-2, 18))
def test_length_and_substring_are_javas_on_any_text(text: str, i: int, j: int) -> None:
    units = utf16(text)
    assert value("length(s)", s=text) == len(units)
    start, end = min(max(i, 0), len(units)), min(max(j, 0), len(units))
    got = value(f"substring(s, {i}, {j})", s=text)
    assert utf16(got) == (units[start:end] if start < end else [])  # type: ignore[arg-type]
