"""Change points: a move's start and stop, the limit set on training rows, resumability."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.inference.changes import (
    ChangeConfig,
    ChangeDetector,
    ChangeState,
    fit_limit,
    shift_statistic,
)
from edge.errors import ConfigError, UserError

CONFIG = ChangeConfig(window_rows=10, hold_rows=3)


def series(seed: int = 0) -> np.ndarray:
    """400 quiet rows, a ramp to a new level over 20 rows, 300 rows there (2-D, whitened)."""
    rng = np.random.default_rng(seed)
    level = np.concatenate([np.zeros(400), np.linspace(0, 3, 20), np.full(300, 3.0)])
    return np.column_stack([level, 0.5 * level]) + rng.normal(0, 0.2, (720, 2))


def test_the_statistic_is_the_squared_difference_of_two_window_means() -> None:
    w = np.arange(12, dtype=float).reshape(-1, 1)
    stat = shift_statistic(w, 3)
    assert np.isnan(stat[:5]).all()
    assert stat[5] == pytest.approx((4.0 - 1.0) ** 2)  # mean(3,4,5) - mean(0,1,2)
    assert stat[11] == pytest.approx(9.0)


def test_a_move_is_marked_where_it_starts_and_where_it_stops() -> None:
    w = series()
    detector = ChangeDetector.fit(w[:400], CONFIG)
    result = detector.run(w)
    cps = np.flatnonzero(result.changepoint)
    assert len(cps) == 2
    start, stop = cps
    assert 400 <= start <= 415 and 420 <= stop <= 450
    assert result.moving[start:stop].all() and not result.moving[stop:].any()
    assert not result.moving[:400].any()


def test_the_statistic_does_not_depend_on_the_operating_point() -> None:
    w = series()
    detector = ChangeDetector.fit(w[:400], CONFIG)
    shifted = detector.run(w + np.array([5.0, -2.0]))
    assert np.array_equal(shifted.changepoint, detector.run(w).changepoint)


@settings(max_examples=25)
@given(st.integers(1, 719))
def test_a_series_followed_in_pieces_gives_the_same_changes(split: int) -> None:
    w = series(1)
    detector = ChangeDetector.fit(w[:400], CONFIG)
    whole = detector.run(w)
    first = detector.run(w[:split])
    second = detector.run(w[split:], first.state)
    assert np.array_equal(
        np.concatenate([first.changepoint, second.changepoint]), whole.changepoint
    )
    assert np.allclose(np.concatenate([first.statistic, second.statistic]), whole.statistic)


def test_too_few_training_rows_and_bad_settings_are_named() -> None:
    with pytest.raises(UserError, match="training rows"):
        ChangeDetector.fit(np.zeros((20, 2)), CONFIG)
    with pytest.raises(ConfigError, match="quantile"):
        ChangeConfig(quantile=1.5)
    with pytest.raises(ConfigError, match="window_rows"):
        ChangeConfig(window_rows=0)


def test_a_state_stored_as_json_continues_the_series_exactly() -> None:
    w = series(3)
    detector = ChangeDetector.fit(w[:400], CONFIG)
    whole = detector.run(w)
    first = detector.run(w[:410])  # mid-move: the debouncer's streak is carried
    stored = json.loads(json.dumps(first.state.to_dict()))
    second = detector.run(w[410:], ChangeState.from_dict(stored))
    assert np.array_equal(np.concatenate([first.moving, second.moving]), whole.moving)
    assert np.array_equal(
        np.concatenate([first.changepoint, second.changepoint]), whole.changepoint
    )


def test_the_limit_pools_separate_runs_and_needs_ten_window_pairs() -> None:
    w = series(4)[:400]
    assert fit_limit([w[:200], w[200:]], CONFIG) == pytest.approx(
        ChangeDetector.fit(w, CONFIG).limit, rel=0.5
    )
    assert fit_limit([w[:28]], CONFIG) is None  # 2 x 10 rows give 9 window pairs
    assert fit_limit([], CONFIG) is None
