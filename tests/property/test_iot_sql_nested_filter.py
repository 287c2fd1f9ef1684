"""Nested SELECT element filtering against a small independent reference written from the
spec (iot-core-rules-and-limits §1.2-§1.5) and AWS's nested-queries page: the inner FROM
names a value of the message; an array yields, in order, the result of each element WHERE
passes (Boolean true only); an object yields its one result; anything else is Undefined.
Inside, a missing key is Undefined (left out of an object, dropped from SELECT VALUE), Null
is kept, and ``v > K`` compares numbers and ASCII numeric strings only."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

NUMERIC = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE]-?[0-9]+)?")
ABSENT = object()

scalars = st.one_of(
    st.integers(-50, 50),
    st.integers(-50, 50).map(str),
    st.sampled_from(["a", "b", "", "dry", "1e1", " 5", "true"]),
    st.booleans(),
    st.none(),
)
elements = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={"n": st.sampled_from(["a", "b", 1, None]), "v": scalars, "w": scalars},
    ),
    scalars,
    st.lists(st.integers(0, 3), max_size=2),
)
sources = st.one_of(
    st.lists(elements, max_size=8),
    elements,
    st.just(ABSENT),
)


def greater(v: Any, k: int) -> bool:
    """``v > k`` is Boolean true: numbers, and strings matching §1.4's pattern."""
    if isinstance(v, bool) or v is None:
        return False
    if isinstance(v, int):
        return v > k
    return isinstance(v, str) and NUMERIC.fullmatch(v) is not None and Decimal(v) > k


def one(element: Any, k: int, value: bool) -> Any:
    """The result on one element, or ABSENT when WHERE does not pass or it is Undefined."""
    if not isinstance(element, dict):
        return ABSENT  # its fields are Undefined, so ``v > k`` is Undefined
    if not greater(element.get("v"), k):
        return ABSENT
    if value:
        return element.get("n", ABSENT)
    return {key: element[key] for key in ("n", "v") if key in element}


def reference(source: Any, k: int, value: bool) -> Any:
    if isinstance(source, list):
        results = [one(e, k, value) for e in source]
        return [r for r in results if r is not ABSENT]
    if isinstance(source, dict):
        return one(source, k, value)
    return ABSENT


@settings(max_examples=150, deadline=None)
@given(source=sources, k=st.integers(-10, 10), value=st.booleans())
def test_nested_select_filters_elements_as_the_reference_does(
    source: Any, k: int, value: bool
) -> None:
    inner = "SELECT VALUE n" if value else "SELECT n, v"
    sql = f"SELECT ({inner} FROM e WHERE v > {k}) AS out FROM 't/#'"
    payload = {} if source is ABSENT else {"e": source}
    out = evaluate(parse(sql), Message("t/x", json.dumps(payload).encode()))
    assert out is not None
    expected = reference(source, k, value)
    want = {} if expected is ABSENT else {"out": expected}
    assert out.to_bytes() == json.dumps(want, separators=(",", ":")).encode()
