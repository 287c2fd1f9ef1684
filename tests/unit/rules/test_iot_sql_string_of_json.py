"""An Array or Object converted to a String is its JSON with the payload's characters as
they are: AWS's data-types page ("The Array serialized to JSON ... A String is quoted"),
and the rules engine's Java JSON writers escape only what JSON requires (the quote, the
backslash, control characters), never a letter such as 'é' as ``\\u00e9``. So ``length``,
``numbytes``, the hashes, ``substring`` and ``+`` see the characters the device sent.
The rule's output is JSON either way and is not concerned.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

PAYLOAD = {"a": ["\u00e9", "\u20ac\U0001f600"], "o": {"k\u00e9": "\u4e2d"}, "c": ['\n\t"\\']}


def run(expr: str, payload: Any = PAYLOAD) -> object:
    out = evaluate(parse(f"SELECT {expr} AS x FROM '#'"), Message("t", json.dumps(payload)))
    assert out is not None
    return json.loads(out.to_bytes()).get("x", "<undefined>")


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("cast(a AS String)", '["\u00e9","\u20ac\U0001f600"]'),
        ("cast(o AS String)", '{"k\u00e9":"\u4e2d"}'),
        ("'' + a", '["\u00e9","\u20ac\U0001f600"]'),
        ("length(a)", 11),  # UTF-16 units: the emoji is two
        ("numbytes(o)", 13),
        ("substring(o, 3, 4)", "\u00e9"),
        ("upper(a)", '["\u00c9","\u20ac\U0001f600"]'),
        ("cast(c AS String)", '["\\n\\t\\"\\\\"]'),  # what JSON must escape still is
    ],
)
def test_arrays_and_objects_convert_to_json_with_their_characters(expr: str, want: object) -> None:
    assert run(expr) == want


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=5), max_size=4))
def test_string_of_an_array_reads_back_as_the_array(items: list[str]) -> None:
    text = run("cast(a AS String)", {"a": items})
    assert isinstance(text, str)
    assert json.loads(text) == items
    assert text == json.dumps(items, separators=(",", ":"), ensure_ascii=False)
