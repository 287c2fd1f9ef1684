"""Result keys read back from stored execution records: whatever the record holds."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cloud.l4e.result_keys import compact_keys, stored_result_keys

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "result_keys": json_values,
            "result_keys_compact": json_values
            | st.fixed_dictionaries(
                {}, optional={"prefix": json_values, "suffix": json_values, "middles": json_values}
            ),
        },
    )
)
def test_a_record_of_any_shape_gives_a_list_of_strings(doc: dict[str, Any]) -> None:
    """The dashboard and ``query`` read records a user can edit: no shape may raise."""
    keys = stored_result_keys(doc)
    assert isinstance(keys, list) and all(isinstance(k, str) for k in keys)


@given(
    st.lists(
        st.from_regex(r"[a-z0-9_]{1,12}", fullmatch=True), min_size=2, max_size=50, unique=True
    )
)
def test_compacted_keys_read_back_as_written(assets: list[str]) -> None:
    keys = [f"output/2026/01/01/{a}/results.jsonl" for a in assets]
    compact = compact_keys(keys)
    assert compact is not None
    assert stored_result_keys({"result_keys": [], "result_keys_compact": compact}) == keys
    assert stored_result_keys({"result_keys": keys}) == keys


def test_the_odd_types_an_edited_export_holds_give_no_keys() -> None:
    assert stored_result_keys({"result_keys": 5}) == []
    assert stored_result_keys({"result_keys": ["a", 5, None, "b"]}) == ["a", "b"]
    assert stored_result_keys({"result_keys_compact": {"prefix": 1, "middles": ["x"]}}) == []
