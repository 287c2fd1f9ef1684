"""Scoring's gap check answers ``np.isnan(x).any()`` for any readings and layout."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.inference.model import SCORE_BLOCK_ROWS, _has_nan


@settings(max_examples=200, deadline=None)
@given(
    rows=st.sampled_from([0, 1, 7, 2 * SCORE_BLOCK_ROWS, 2 * SCORE_BLOCK_ROWS + 3]),
    width=st.sampled_from([1, 3, 30]),
    order=st.sampled_from(["C", "F", "Cs", "Fs"]),
    specials=st.lists(
        st.tuples(st.integers(0, 10**9), st.sampled_from([np.nan, np.inf, -np.inf, 1e300])),
        max_size=3,
    ),
)
def test_the_nan_check_is_isnan_any(
    rows: int, width: int, order: str, specials: list[tuple[int, float]]
) -> None:
    """Infinities of both signs, readings whose squares overflow, rows of a larger array
    (``Cs``, ``Fs``): the check before scoring fills gaps exactly when there is one."""
    x = np.asarray(np.zeros((rows + 2, width)), order=order[0])
    x = x[1 : rows + 1] if order.endswith("s") else x[:rows]
    for at, value in specials:
        if x.size:
            x[(at // width) % rows, at % width] = value
    assert _has_nan(x) == bool(np.isnan(x).any())
