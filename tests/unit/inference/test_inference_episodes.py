"""Alarm episodes: debounced raise and clear, and a fault that ends at a new operating point.

Deviations are written directly in the model's whitened units (squared length 1 is the
threshold), so each test states the plant's path through that space.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.inference.alarm import debounce
from cloud.inference.episodes import (
    EpisodeConfig,
    EpisodeTracker,
    nearest_point,
)
from edge.errors import ConfigError

ENDS = EpisodeConfig(raise_rows=5, clear_rows=5, end_back=0.5, end_rows=10, settle_rows=20)


def path(*legs: tuple[int, tuple[float, float]], noise: float = 0.15, seed: int = 0):
    """Rows of 2-D deviations: each leg holds a level for some rows, plus noise."""
    rng = np.random.default_rng(seed)
    rows = np.concatenate([np.tile(level, (count, 1)) for count, level in legs])
    return rows + rng.normal(0.0, noise, rows.shape)


def run(w: np.ndarray, config: EpisodeConfig = ENDS):
    return EpisodeTracker(config).run(w, np.zeros(len(w), dtype=int))


@given(st.lists(st.floats(0.0, 3.0), max_size=80), st.integers(1, 6))
def test_without_the_end_rule_it_is_a_debounce_of_above_threshold(
    sizes: list[float], rows: int
) -> None:
    w = np.array(sizes, dtype=float).reshape(-1, 1)
    result = run(w, EpisodeConfig(raise_rows=rows, clear_rows=rows))
    assert result.alarm.tolist() == debounce(w[:, 0] ** 2 > 1.0, rows).tolist()
    assert not result.ended.any()


def test_a_fault_that_ends_at_a_new_operating_point_clears_there() -> None:
    w = path((100, (0, 0)), (150, (5, 0)), (200, (1.5, 1.5)))
    held = run(w, EpisodeConfig(raise_rows=5, clear_rows=5))
    assert held.alarm[110:250].all() and held.alarm[260:].all()  # the old rule never clears
    result = run(w)
    assert result.alarm[110:250].all()
    ended = np.flatnonzero(result.ended)
    assert len(ended) == 1 and 250 < ended[0] <= 250 + 2 * ENDS.end_rows + 2
    assert not result.alarm[ended[0] :].any()
    assert (result.ratio[ended[0] + ENDS.settle_rows :] < 1.0).mean() > 0.95


def test_a_fault_that_grows_or_holds_is_never_learnt() -> None:
    ramp = np.linspace(0, 6, 300)
    w = np.vstack([path((100, (0, 0))), np.column_stack([ramp, 0.5 * ramp]), path((300, (6, 3)))])
    result = run(w)
    assert not result.ended.any()
    assert result.alarm[150:].all()


def test_a_small_retreat_is_still_the_fault() -> None:
    w = path((100, (0, 0)), (150, (5, 0)), (200, (3.5, 0.5)))
    result = run(w)
    assert not result.ended.any() and result.alarm[260:].all()


def test_the_plant_may_sit_anywhere_between_the_old_and_the_new_point() -> None:
    w = path((100, (0, 0)), (150, (5, 0)), (100, (2, 0)), (100, (1, 0)), (50, (0, 0)))
    result = run(w)
    assert result.ended.sum() == 1
    after = np.flatnonzero(result.ended)[0] + ENDS.settle_rows
    assert not result.alarm[after:].any()
    assert nearest_point(np.array([1.0, 0.0]), [np.array([2.0, 0.0])]).tolist() == [1.0, 0.0]
    assert nearest_point(np.array([-1.0, 0.0]), [np.array([2.0, 0.0])]).tolist() == [0.0, 0.0]
    assert nearest_point(np.array([3.0, 1.0]), [np.array([2.0, 0.0])]).tolist() == [2.0, 0.0]


def test_a_new_fault_from_the_new_point_alarms_again() -> None:
    w = path((100, (0, 0)), (150, (5, 0)), (150, (1.5, 1.5)), (100, (1.5, 6)))
    result = run(w)
    assert result.ended.sum() == 1
    assert result.alarm[420:].all()


def test_residuals_square_to_the_ratio() -> None:
    w = path((50, (0, 0)), (60, (4, 1)), (80, (1, 1)))
    result = run(w)
    assert np.allclose((result.residual**2).sum(1), result.ratio)


@given(st.integers(1, 399))
def test_a_series_scored_in_pieces_gives_the_same_alarms(split: int) -> None:
    w = path((100, (0, 0)), (150, (5, 0)), (150, (1.5, 1.5)), seed=1)
    whole = run(w)
    tracker = EpisodeTracker(ENDS)
    modes = np.zeros(len(w), dtype=int)
    first = tracker.run(w[:split], modes[:split])
    second = tracker.run(w[split:], modes[split:], state=first.state)
    assert np.array_equal(np.concatenate([first.alarm, second.alarm]), whole.alarm)
    assert np.array_equal(np.concatenate([first.ended, second.ended]), whole.ended)


def test_machine_off_rows_never_alarm_and_hold_the_state() -> None:
    w = path((20, (0, 0)), (40, (4, 0)))
    off = np.zeros(len(w), dtype=bool)
    off[30:40] = True
    result = EpisodeTracker(ENDS).run(w, np.zeros(len(w), dtype=int), off)
    assert not result.alarm[30:40].any() and result.alarm[40:].all()
    assert (result.ratio[30:40] == 0).all()


def test_operating_points_are_kept_per_mode() -> None:
    w = path((100, (0, 0)), (150, (5, 0)), (150, (1.5, 1.5)))
    modes = np.zeros(len(w), dtype=int)
    result = EpisodeTracker(ENDS).run(w, modes)
    assert result.ended.any()
    other = EpisodeTracker(ENDS).run(
        np.tile([1.5, 1.5], (20, 1)), np.ones(20, dtype=int), state=result.state
    )
    assert other.alarm[-1]  # the point accepted in mode 0 is not normal in mode 1


@pytest.mark.parametrize(
    "fields",
    [{"raise_rows": 0}, {"end_rows": 0}, {"settle_rows": -1}, {"end_back": 0}, {"end_back": 2}],
)
def test_bad_settings_are_config_errors(fields) -> None:
    with pytest.raises(ConfigError, match=next(iter(fields))):
        EpisodeConfig(**fields)
