"""deeper_than: the shadow's nesting limit, measured without recursion."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from edge.json_values import deeper_than

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
