"""A deeply nested payload reads the same whatever the expression that first reads it.

The document is parsed the first time an expression reads it, and Python's JSON parser
shares the interpreter's recursion limit with the evaluator: read first from deep inside
an expression (a call nested 60 deep), a payload nested 900 levels failed to parse and
every field of it was Undefined, while ``SELECT k`` read it."""

from __future__ import annotations

import json

import pytest

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

DEEP = 900


def payload(depth: int) -> bytes:
    return b'{"a":' + b"[" * depth + b"1" + b"]" * depth + b',"k":1}'


@pytest.mark.parametrize(
    "expr",
    [
        "k",
        "abs(" * 60 + "k" + ")" * 60,
        "get([" * 30 + "k" + "], 0)" * 30,
        "CASE 1 WHEN 1 THEN " * 30 + "k" + " END" * 30,
    ],
)
def test_a_field_reads_the_same_however_deep_the_expression(expr: str) -> None:
    out = evaluate(parse(f"SELECT {expr} AS x FROM '#'"), Message("t", payload(DEEP)))
    assert out is not None
    assert json.loads(out.to_bytes()) == {"x": 1}


def test_where_reads_it_the_same() -> None:
    where = "abs(" * 60 + "k" + ")" * 60 + " = 1"
    out = evaluate(parse(f"SELECT k FROM '#' WHERE {where}"), Message("t", payload(DEEP)))
    assert out is not None
    assert json.loads(out.to_bytes()) == {"k": 1}


def test_a_payload_past_the_parsers_depth_is_still_not_json() -> None:
    """Nested past what the parser takes at all: not JSON, as before (fields Undefined,
    ``*`` its bytes)."""
    deep = payload(100_000)
    out = evaluate(parse("SELECT k AS x FROM '#'"), Message("t", deep))
    assert out is not None and out.to_bytes() == b"{}"
    out = evaluate(parse("SELECT * FROM '#'"), Message("t", deep))
    assert out is not None and out.to_bytes() == deep
