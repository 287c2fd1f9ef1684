"""Every IoT SQL operator on mixed operand types against a small independent reference of
iot-core-rules-and-limits §1.4/§1.5, computed with exact ``Decimal`` arithmetic.

Operands are what a device can send: Ints, Decimals, numeric and other strings, Booleans,
Null, and a missing key (Undefined). The reference restates the spec's table, not the
evaluator's code: conversion of numeric strings (ASCII digits only), Undefined propagation,
``+`` as concatenation when either side is a String, Int results only for Int operands,
division truncating toward zero, ``%`` with the dividend's sign, division by zero Undefined,
Null staying Null in arithmetic, ``=``/``<>`` by type.
"""

from __future__ import annotations

import json
import re
from decimal import Context, Decimal, localcontext
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

MISSING = object()
"""The key is absent from the payload: the operand is Undefined."""
SKIP = object()
"""The spec leaves this case open; the reference makes no claim."""
NUMERIC = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE]-?[0-9]+)?")

eighths = st.integers(-(10**7), 10**7).map(lambda n: n / 8)
"""Decimals that ``json.dumps`` writes exactly (34-digit arithmetic on any decimal text is
``tests/property/test_iot_sql_decimal.py``)."""
operands = st.one_of(
    st.integers(-(10**12), 10**12),
    eighths,
    st.integers(-999, 999).map(str),
    eighths.map(repr),
    st.sampled_from(["", "dry", "1e3", "-2E1", " 5", "+5", "5.", ".5", "\u0665", "true", "NaN"]),
    st.booleans(),
    st.none(),
    st.just(MISSING),
)
numbers = st.one_of(
    st.integers(-(10**12), 10**12),
    st.integers(-20, 20),
    eighths,
    st.integers(-999, 999).map(str),
    eighths.map(repr),
)
OPS = ["+", "-", "*", "/", "%", "=", "<>", "<", "<=", ">", ">="]


def as_json(value: Any) -> Any:
    """What the evaluator reads back from the payload: 2016-03-23 makes whole Decimals Ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if isinstance(value, str) and NUMERIC.fullmatch(value):
        return Decimal(value)
    return None


def text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return None  # Decimal spelling and Null: the spec does not say


def reference(op: str, a: Any, b: Any) -> Any:
    """The operator's result; MISSING for Undefined, SKIP where the spec is silent."""
    if a is MISSING or b is MISSING:
        return MISSING
    if op in ("=", "<>"):
        if isinstance(a, bool) != isinstance(b, bool):
            same = False
        elif isinstance(a, int | float) and isinstance(b, int | float):
            same = Decimal(repr(a) if isinstance(a, float) else a) == Decimal(
                repr(b) if isinstance(b, float) else b
            )
        elif type(a) is not type(b):
            same = False
        else:
            same = a == b
        return same if op == "=" else not same
    if op in ("<", "<=", ">", ">="):
        x, y = number(a), number(b)
        if x is None or y is None:
            return MISSING
        return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
    if op == "+" and (isinstance(a, str) or isinstance(b, str)):
        left, right = text(a), text(b)
        if left is None or right is None:
            return SKIP
        return left + right
    if a is None or b is None:
        return None if number(a if b is None else b) is not None or a is b else SKIP
    x, y = number(a), number(b)
    if x is None or y is None:
        return MISSING
    ints = type(a) is int and type(b) is int
    with localcontext() as ctx:
        ctx.prec = 60
        if op == "+":
            result = x + y
        elif op == "-":
            result = x - y
        elif op == "*":
            result = x * y
        elif y == 0:
            return MISSING
        elif op == "/":
            result = Decimal(int(x / y)) if ints else x / y
        else:
            result = x - y * Decimal(int(x / y))  # the dividend's sign
    return int(result) if ints else result


def agrees(got: Any, want: Any) -> bool:
    """A Decimal result equals the exact one rounded to IoT SQL's 34 digits."""
    if isinstance(want, Decimal):
        if isinstance(got, bool) or not isinstance(got, int | Decimal):
            return False
        return got == Context(prec=34).plus(want)
    return type(got) is type(want) and got == want


def check(op: str, a: Any, b: Any) -> None:
    payload = {k: v for k, v in (("a", a), ("b", b)) if v is not MISSING}
    message = Message("t/x", json.dumps(payload).encode(), timestamp_ms=1)
    out = evaluate(parse(f"SELECT a {op} b AS r FROM 't/#'"), message)
    assert out is not None and isinstance(out.value, dict)
    want = reference(op, as_json(a), as_json(b))
    if want is SKIP:
        return
    if want is MISSING:
        assert "r" not in out.value, (a, op, b, out.value)
        return
    assert "r" in out.value and agrees(out.value["r"], want), (a, op, b, out.value, want)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(OPS), operands, operands)
def test_operators_on_any_operands_follow_the_spec_tables(op: str, a: Any, b: Any) -> None:
    check(op, a, b)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(OPS[:5]), numbers, numbers)
def test_arithmetic_on_numbers_follows_the_spec_tables(op: str, a: Any, b: Any) -> None:
    check(op, a, b)


@settings(max_examples=200, deadline=None)
@given(operands, operands)
def test_where_passes_only_on_boolean_true(a: Any, b: Any) -> None:
    """§1.3/§1.5: AND/OR take Booleans or 'true'/'false' strings; anything else, Null
    included, is Undefined, and only true runs the actions."""

    def boolean(v: Any) -> Any:
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        return MISSING

    payload = {k: v for k, v in (("a", a), ("b", b)) if v is not MISSING}
    for op in ("AND", "OR"):
        message = Message("t/x", json.dumps(payload).encode(), timestamp_ms=1)
        passed = evaluate(parse(f"SELECT 1 AS one FROM 't/#' WHERE a {op} b"), message)
        x, y = boolean(a), boolean(b)
        both = x is not MISSING and y is not MISSING
        want = both and ((x and y) if op == "AND" else (x or y))
        assert (passed is not None) is want, (a, op, b)
