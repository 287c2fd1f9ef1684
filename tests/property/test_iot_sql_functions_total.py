"""Every IoT SQL function is total over what a device can send: any JSON value (huge and
tiny numbers, numeric and other strings, lone surrogates, arrays, objects, Null) or a
missing key, in every argument position, gives a value or Undefined (spec §1.4: wrong
argument types are Undefined), never an exception that would fail the message."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import FUNCTIONS, REGEX_FUNCTIONS, parse

NAMES = sorted(FUNCTIONS)
scalars = st.one_of(
    st.integers(-(10**40), 10**40),
    st.integers(-3, 1100),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e999", "-1E-999", "9.9E999", "0.5", "-7", "65", "yyyy-MM-dd"]),
    st.sampled_from(["2015-01-01", "$1", "\\", "${g}", "enrichArray", "UTC", "base64"]),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
SURROGATE = '"\\ud800x"'
"""A JSON string holding a lone surrogate, as a device's ``\\u`` escape can carry: a str
in Python with no UTF-8 form."""
arguments = st.lists(
    st.one_of(values.map(json.dumps), st.just(SURROGATE), st.just(None)), min_size=3, max_size=3
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NAMES), args=arguments)
def test_every_function_gives_a_value_or_undefined(name: str, args: list[str | None]) -> None:
    low, high = FUNCTIONS[name]
    count = max(low, min(2, high if high is not None else 3))
    body = ", ".join(f'"a{i}": {a}' for i, a in enumerate(args) if a is not None)  # None: missing
    call_args = [f"a{i}" for i in range(count)]
    if name in REGEX_FUNCTIONS:
        call_args[1] = "'(a|b)+[0-9]*$'"
    if name in ("encode", "decode"):
        call_args[1] = "'base64'"  # any other scheme is Undefined before the value is read
    sql = f"SELECT {name}({', '.join(call_args)}) AS x FROM '#'"
    out = evaluate(parse(sql), Message("a/b", ("{" + body + "}").encode(), timestamp_ms=0))
    assert out is not None
    out.to_bytes()
