"""The double-precision functions and ``cast(x AS Double)`` against a reference built from
AWS's functions page: the argument is rounded to a double, the function applied, and the
result is a Decimal holding that double ("Decimal (with double precision)" in every such
table), Undefined when the double is not finite or the function has no real value.

A function's result is a Decimal, not an Int, even when whole: the operators page's ``/``
table then divides it as a Decimal (``sqrt(9) / 2`` is 1.5). A cast's whole result is an
Int: the cast page's "Cast to decimal" table says so for SQL 2016-03-23.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import UNDEFINED, Message, evaluate
from cloud.rules.sql import parse

ONE_ARGUMENT = {
    "acos": math.acos,
    "asin": math.asin,
    "atan": math.atan,
    "cos": math.cos,
    "cosh": math.cosh,
    "exp": math.exp,
    "ln": math.log,
    "log": math.log10,
    "sin": math.sin,
    "sinh": math.sinh,
    "sqrt": math.sqrt,
    "tan": math.tan,
    "tanh": math.tanh,
}
arguments = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(-3, 3),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3)),
)


def reference(fn: Any, x: float) -> Any:
    try:
        y = fn(x)
    except (ValueError, OverflowError):
        return UNDEFINED
    return Decimal(repr(y)) if math.isfinite(y) else UNDEFINED


def run(expr: str, x: int | float) -> Any:
    message = Message("t", json.dumps({"x": x}).encode())
    out = evaluate(parse(f"SELECT {expr} AS r FROM '#'"), message)
    assert out is not None and isinstance(out.value, dict)
    return out.value.get("r", UNDEFINED)


def read_back(x: int | float) -> float:
    """*x* as the evaluator reads it from the payload, rounded to a double."""
    return float(Decimal(repr(x)) if isinstance(x, float) else x)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(ONE_ARGUMENT)), arguments)
def test_double_functions_give_the_double_as_a_decimal(name: str, x: int | float) -> None:
    want = reference(ONE_ARGUMENT[name], read_back(x))
    got = run(f"{name}(x)", x)
    if want is UNDEFINED:
        assert got is UNDEFINED
        return
    assert type(got) is Decimal and got == want, (name, x, got, want)
    halved = run(f"{name}(x) / 2", x)
    assert type(halved) is Decimal and halved == want / 2


long_decimals = st.tuples(st.integers(-(10**30), 10**30), st.integers(0, 40)).map(
    lambda t: format(Decimal(t[0]).scaleb(-t[1]), "f")
)
"""Decimal text of up to 31 digits (as a payload string), more than a double holds; plain
notation, since spec §1.4's numeric-string pattern has no ``E+`` exponent."""


@settings(max_examples=200, deadline=None)
@given(st.one_of(arguments, long_decimals))
def test_cast_as_double_rounds_to_the_nearest_double(x: int | float | str) -> None:
    got = run("cast(x AS Double)", x)
    nearest = Decimal(repr(float(x) if isinstance(x, str) else read_back(x)))
    whole = nearest == nearest.to_integral_value() and abs(nearest) < 10**34
    want = int(nearest) if whole else nearest
    assert type(got) is type(want) and got == want, (x, got)
