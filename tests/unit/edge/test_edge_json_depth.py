"""deeper_than and nesting_depth: nesting limits, measured without recursion."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from edge.json_values import deeper_than, nesting_depth

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=20,
)


def levels(value: Any) -> int:
    """The reference: levels of non-empty containers, the value itself being the first."""
    if isinstance(value, dict | list) and value:
        children = value.values() if isinstance(value, dict) else value
        return 1 + max(levels(child) for child in children)
    return 0


@given(JSON, st.integers(0, 6))
def test_agrees_with_a_recursive_count(value: Any, limit: int) -> None:
    assert deeper_than(value, limit) == (levels(value) > limit)


def test_the_shadow_limit_and_a_value_too_deep_for_recursion() -> None:
    within = {"a": {"b": {"c": {"d": {"e": 1}}}}}  # desired.key.a.b.c.d.e: level 6 holds 1
    assert not deeper_than(within, 5)
    assert deeper_than({"a": within}, 5)
    assert not deeper_than({"a": {"b": {"c": {"d": {"e": {}}}}}}, 5)  # empty is a leaf
    value: Any = 1
    for _ in range(100_000):
        value = [value]
    assert deeper_than(value, 5)


TEXT_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n', max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=2), inner, max_size=3)
    ),
    max_leaves=20,
)


def containers(value: Any) -> int:
    """The reference for text: levels of containers, empty ones included."""
    if isinstance(value, dict | list):
        children = value.values() if isinstance(value, dict) else value
        return 1 + max((containers(child) for child in children), default=0)
    return 0


@given(TEXT_JSON, st.sampled_from([None, 1]), st.booleans())
def test_nesting_depth_of_json_text_agrees_with_a_recursive_count(
    value: Any, indent: int | None, as_bytes: bool
) -> None:
    """Brackets inside strings (escaped quotes and backslashes included) are no nesting."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    assert nesting_depth(text.encode() if as_bytes else text) == containers(value)


def test_nesting_depth_is_linear_and_takes_any_bytes() -> None:
    assert nesting_depth(b"[" * 120_000) == 120_000
    assert nesting_depth(b'"' + b'\\"' * 60_000) == 0  # one unterminated string, read once
    assert nesting_depth(b'["\xff[", [[]]]') == 3
    assert nesting_depth("") == 0
