"""not_unicode: whether a decoded JSON value holds text no store can write.

JSON's ``"\\ud800"`` escape decodes to a lone surrogate, which is no Unicode character:
UTF-8 cannot encode it, so a state store, a log line or SNS refuses it later. Checked once
where a document comes in, it is refused there with its place named.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from edge.json_values import not_unicode

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=4)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=20,
)


def encodes(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@given(JSON)
def test_agrees_with_utf8_encoding(value: Any) -> None:
    assert (not_unicode(value) is None) == encodes(value)


def test_names_where_the_surrogate_is() -> None:
    assert not_unicode("ok") is None
    assert not_unicode("ab\ud800") == "position 2 holds '\\ud800', not a Unicode character"
    problem = not_unicode({"a": [1, {"b": "x\udcff"}]})
    assert problem == "$.a[1].b: position 1 holds '\\udcff', not a Unicode character"
    assert not_unicode({"k\ud800": 1}) == (
        "$: the name 'k\\ud800': position 1 holds '\\ud800', not a Unicode character"
    )


def test_a_deep_document_is_walked_without_recursion() -> None:
    value: Any = "\ud800"
    for _ in range(5000):
        value = [value]
    problem = not_unicode(value)
    assert problem is not None and problem.endswith("not a Unicode character")
