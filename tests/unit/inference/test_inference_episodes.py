"""Alarm episodes: debounced raise and clear, and a fault that ends at a new operating point.

Deviations are written directly in the model's whitened units (squared length 1 is the
threshold), so each test states the plant's path through that space.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.inference.alarm import debounce
from cloud.inference.episodes import (
    DEFAULT_ALARM,
    AlarmConfig,
    EpisodeConfig,
    EpisodeState,
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


def test_a_weak_fault_that_wanders_is_held_with_a_least_move_back() -> None:
    """A fault at 1.8 thresholds' radius that dips to 1.2 has come back by a third of its
    small displacement: with the share alone the dip ends it and the fault's level is
    learnt; a least move back of 1 keeps it the fault."""
    shares = EpisodeConfig(raise_rows=5, clear_rows=5, end_back=0.3, end_rows=10, settle_rows=20)
    w = path((100, (0, 0)), (100, (1.8, 0)), (60, (1.2, 0)), (100, (1.8, 0)))
    learnt = run(w, shares)
    assert learnt.ended.sum() == 1 and not learnt.alarm[-80:].any()
    held = run(w, EpisodeConfig(**{**shares.__dict__, "end_back_min": 1.0}))
    assert not held.ended.any() and held.alarm[110:].all()


def test_a_least_move_back_still_ends_a_fault_that_came_back_far() -> None:
    w = path((100, (0, 0)), (150, (5, 0)), (200, (1.5, 1.5)))
    result = run(w, EpisodeConfig(**{**ENDS.__dict__, "end_back_min": 1.0}))
    ended = np.flatnonzero(result.ended)
    assert len(ended) == 1 and 250 < ended[0] <= 250 + 2 * ENDS.end_rows + 2


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
    [
        {"raise_rows": 0},
        {"end_rows": 0},
        {"settle_rows": -1},
        {"end_back": 0},
        {"end_back": 2},
        {"end_back_min": -0.1},
        {"end_back_min": float("nan")},
        {"clear_settle_rows": -1},
        {"turn_cos": -2},
        {"turn_size": 0},
        {"turn_still": 0},
        {"settle_guard": -0.1},
        {"trip_ratio": 1.0},
        {"trip_rows": 0},
        {"trip_curve": "cubic"},
        {"fast_rows": -1},
        {"fast_clear_rows": 0},
        {"fast_level": 0},
        {"fast_drop": 0},
        {"fast_drop": 1.5},
    ],
)
def test_bad_settings_are_config_errors(fields) -> None:
    with pytest.raises(ConfigError, match=next(iter(fields))):
        EpisodeConfig(**fields)


TURNS = EpisodeConfig(
    raise_rows=5,
    clear_rows=5,
    end_rows=10,
    settle_rows=20,
    turn_cos=0.0,
    turn_size=0.5,
    turn_still=5,
    turn_lookback=10,
)


def moves_at(n: int, *spans: tuple[int, int]) -> np.ndarray:
    """The change detector's flags: the plant moves during each ``[start, stop)``."""
    moving = np.zeros(n, dtype=bool)
    for start, stop in spans:
        moving[start:stop] = True
    return moving


def run_moving(w: np.ndarray, moving: np.ndarray, config: EpisodeConfig = TURNS):
    return EpisodeTracker(config).run(w, np.zeros(len(w), dtype=int), moving=moving)


def test_a_fault_that_turns_elsewhere_ends_where_the_plant_comes_to_rest() -> None:
    # GIVEN a fault along the first sensor, then a move to a far point along the second
    w = path((100, (0, 0)), (150, (5, 0)), (200, (0.5, 7)), noise=0.1)
    moving = moves_at(len(w), (100, 112), (250, 262))
    # WHEN the rules run with the turn rule, and without it
    held = run_moving(w, moving, EpisodeConfig(**{**TURNS.__dict__, "turn_cos": None}))
    turned = run_moving(w, moving)
    # THEN without it the alarm holds to the end; with it the fault ends once the plant
    # has been still for turn_still rows after the second move
    assert held.alarm[110:].all()
    [end] = np.flatnonzero(turned.ended)
    assert end == 261 + TURNS.turn_still
    assert turned.alarm[110:end].all() and not turned.alarm[end:].any()


def test_a_move_that_carries_the_fault_further_is_still_the_fault() -> None:
    w = path((100, (0, 0)), (150, (4, 0)), (200, (8, 1)), noise=0.1)
    result = run_moving(w, moves_at(len(w), (100, 112), (250, 262)))
    assert not result.ended.any() and result.alarm[110:].all()


def test_the_move_that_raised_the_alarm_ends_nothing() -> None:
    # a fault that arrives in two steps within the lookback, then holds
    w = path((100, (0, 0)), (6, (3, 0)), (300, (0, 6)), noise=0.1)
    result = run_moving(w, moves_at(len(w), (100, 115)))
    assert not result.ended.any() and result.alarm[120:].all()


def test_after_a_clear_the_plant_may_rest_a_little_past_where_it_started() -> None:
    # GIVEN a fault to +5 that returns through normal to past the old point, to -1.5
    w = path((100, (0, 0)), (150, (5, 0)), (6, (0, 0)), (200, (-1.5, 0)), noise=0.1)
    moving = np.zeros(len(w), dtype=bool)
    plain = EpisodeConfig(raise_rows=5, clear_rows=3, end_rows=10)
    settles = EpisodeConfig(raise_rows=5, clear_rows=3, end_rows=10, clear_settle_rows=60)
    # THEN the plain rules alarm again on the far side; settling accepts the new point
    assert run_moving(w, moving, plain).alarm[300:].all()
    result = run_moving(w, moving, settles)
    assert result.alarm[110:250].all() and not result.alarm[256:].any()


def test_settling_after_a_clear_never_accepts_a_point_back_at_the_fault() -> None:
    # the fault clears briefly (the plant passes through normal) and comes back at +4
    w = path((100, (0, 0)), (150, (5, 0)), (20, (0, 0)), (200, (4, 0)), noise=0.1)
    config = EpisodeConfig(raise_rows=5, clear_rows=3, end_rows=10, clear_settle_rows=60)
    result = run_moving(w, np.zeros(len(w), dtype=bool), config)
    assert result.alarm[300:].all()


@given(st.integers(1, 449))
def test_a_state_stored_as_json_continues_the_series_exactly(split: int) -> None:
    w = path((100, (0, 0)), (150, (5, 0)), (200, (0.5, 7)), seed=2)
    moving = moves_at(len(w), (100, 112), (250, 262))
    modes = np.zeros(len(w), dtype=int)
    config = EpisodeConfig(**{**TURNS.__dict__, "end_back": 0.5, "clear_settle_rows": 30})
    whole = EpisodeTracker(config).run(w, modes, moving=moving)
    tracker = EpisodeTracker(config)
    first = tracker.run(w[:split], modes[:split], moving=moving[:split])
    stored = json.loads(json.dumps(first.state.to_dict()))
    second = tracker.run(
        w[split:], modes[split:], state=EpisodeState.from_dict(stored), moving=moving[split:]
    )
    assert np.array_equal(np.concatenate([first.alarm, second.alarm]), whole.alarm)
    assert np.allclose(np.concatenate([first.ratio, second.ratio]), whole.ratio)


def test_alarm_rules_read_back_from_json_and_bad_ones_are_named() -> None:
    doc = json.loads(json.dumps(DEFAULT_ALARM.to_dict()))
    assert AlarmConfig.from_dict(doc) == DEFAULT_ALARM
    tripping = AlarmConfig(EpisodeConfig(trip_ratio=9.0, trip_rows=3))
    assert AlarmConfig.from_dict(json.loads(json.dumps(tripping.to_dict()))) == tripping
    # rules saved before the inverse-time raise existed read back without it
    old = {"episodes": {k: v for k, v in doc["episodes"].items() if not k.startswith("trip")}}
    assert AlarmConfig.from_dict(old).episodes.trip_ratio is None
    with pytest.raises(ConfigError, match=r"alarm\.episodes: unknown setting 'raise'"):
        AlarmConfig.from_dict({"episodes": {"raise": 3}})
    with pytest.raises(ConfigError, match="turn_cos 2"):
        AlarmConfig.from_dict({"episodes": {"turn_cos": 2}})
    with pytest.raises(ConfigError, match="expected an object"):
        AlarmConfig.from_dict([1, 2])


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 10_000),
    st.sampled_from(
        [
            ENDS,
            TURNS,
            EpisodeConfig(**{**TURNS.__dict__, "clear_settle_rows": 30}),
            EpisodeConfig(**{**TURNS.__dict__, "trip_ratio": 4.0, "trip_rows": 2}),
            EpisodeConfig(**{**ENDS.__dict__, "clear_settle_rows": 30, "trip_ratio": 2.0}),
            EpisodeConfig(**{**TURNS.__dict__, "fast_rows": 3, "fast_clear_rows": 3}),
            EpisodeConfig(
                **{**TURNS.__dict__, "fast_rows": 3, "fast_clear_rows": 3, "trip_ratio": 2.0}
            ),
            EpisodeConfig(**{**TURNS.__dict__, "trip_ratio": 2.0, "trip_curve": "inverse"}),
            EpisodeConfig(
                **{**ENDS.__dict__, "clear_settle_rows": 30, "trip_ratio": 3.0, "trip_rows": 2}
                | {"trip_curve": "inverse"}
            ),
        ]
    ),
)
def test_stretches_of_normal_rows_at_once_match_the_rules_row_by_row(
    seed: int, config: EpisodeConfig
) -> None:
    # GIVEN a plant with two modes, stops, faults that end or turn, and moves
    rng = np.random.default_rng(seed)
    legs = [(int(rng.integers(5, 120)), tuple(rng.normal(0, 2.5, 2))) for _ in range(8)]
    w = path(*legs, noise=float(rng.uniform(0.05, 0.6)), seed=seed)
    modes = (rng.random(len(w)) < 0.02).cumsum() % 2
    off = rng.random(len(w)) < 0.03
    moving = np.abs(np.gradient(w[:, 0])) > 0.5
    short = w + rng.normal(0, 0.3, w.shape)
    fast = EpisodeTracker(config).run(w, modes, off, moving=moving, fast=short)
    # WHEN every row goes through the row-by-row rules instead
    slow_tracker = EpisodeTracker(config)
    slow_tracker._normal_stretch = lambda *_a: (0, True)  # type: ignore[method-assign]
    slow = slow_tracker.run(w, modes, off, moving=moving, fast=short)
    # THEN nothing differs, to the bit
    assert np.array_equal(fast.alarm, slow.alarm) and np.array_equal(fast.ended, slow.ended)
    assert np.array_equal(fast.ratio, slow.ratio)
    assert np.array_equal(fast.residual, slow.residual)
    assert fast.state.to_dict() == slow.state.to_dict()


def test_a_move_across_a_change_of_operating_mode_ends_nothing() -> None:
    # the fault holds while the plant changes mode; each mode measures from its own mean,
    # so the jump in the deviations is no turn of the plant
    w = path((100, (0, 0)), (150, (5, 0)), (200, (0.5, 7)), noise=0.1)
    modes = np.zeros(len(w), dtype=int)
    modes[250:] = 1
    moving = moves_at(len(w), (100, 112), (250, 262))
    result = EpisodeTracker(TURNS).run(w, modes, moving=moving)
    assert not result.ended.any()


TRIPS = EpisodeConfig(raise_rows=8, clear_rows=5, trip_ratio=9.0, trip_rows=2)


def test_a_gross_excursion_raises_sooner_than_a_marginal_one() -> None:
    # GIVEN the same 40-row step at two sizes: 1.5 thresholds (squared 2.25) and 4 (16)
    marginal = path((50, (0, 0)), (40, (1.5, 0)), (30, (0, 0)), noise=0.0)
    gross = path((50, (0, 0)), (40, (4.0, 0)), (30, (0, 0)), noise=0.0)
    # WHEN the rules run with and without the inverse-time raise
    slow_gross, fast_gross = (
        run(gross, EpisodeConfig(raise_rows=8, clear_rows=5)),
        run(gross, TRIPS),
    )
    fast_marginal = run(marginal, TRIPS)
    # THEN the gross step raises on its 2nd row, the marginal one on its 8th as before
    assert np.flatnonzero(fast_gross.alarm)[0] == 51
    assert np.flatnonzero(slow_gross.alarm)[0] == 57
    assert np.flatnonzero(fast_marginal.alarm)[0] == 57
    # and a single gross row among normal ones raises nothing
    spike = path((50, (0, 0)), (1, (5.0, 0)), (30, (0, 0)), noise=0.0)
    assert not run(spike, TRIPS).alarm.any()


def test_a_glitch_is_withdrawn_but_a_gross_fault_is_held() -> None:
    # Models train unsmoothed by default, so one row is one reading: the shipped rules trip
    # on the first gross row, and a glitch of one or two wild readings is withdrawn at the
    # next normal row instead of being held for clear_rows (where a detector model's count
    # of anomalous results would confirm it)
    shipped = DEFAULT_ALARM.episodes
    for wild in (1, 2):
        glitch = path((50, (0, 0)), (wild, (100.0, 0)), (30, (0, 0)), noise=0.0)
        assert np.flatnonzero(run(glitch, shipped).alarm).tolist() == list(range(50, 50 + wild))
    # a fault that stays gross raises on its first row and is held like any alarm
    fault = path((50, (0, 0)), (20, (100.0, 0)), (30, (0, 0)), noise=0.0)
    held = run(fault, shipped).alarm
    assert np.flatnonzero(held)[0] == 50 and held[50:70].all()
    # once up for raise_rows rows the trip is an alarm like any other: one normal row
    # does not end it
    up = shipped.raise_rows + 2
    dip = path((50, (0, 0)), (up, (100.0, 0)), (1, (0, 0)), (10, (100.0, 0)), noise=0.0)
    assert run(dip, shipped).alarm[50 : 61 + up].all()


def test_a_gross_run_interrupted_by_a_marginal_row_starts_over() -> None:
    w = np.array([[0.0]] * 5 + [[4.0], [2.0], [4.0]] + [[0.0]] * 5)
    result = run(w, TRIPS)
    assert not result.alarm.any() and result.state.gross == 0
    split = run(w[:6], TRIPS)
    assert split.state.gross == 1 and split.state.streak == 1


INVERSE = EpisodeConfig(raise_rows=8, clear_rows=5, trip_ratio=3.0, trip_rows=1)
INVERSE = EpisodeConfig(**{**INVERSE.__dict__, "trip_curve": "inverse"})


@pytest.mark.parametrize(
    ("squared", "step_row", "inverse_row"),
    [
        (3.5, 0, 0),  # over trip_ratio: the first row on either curve
        (2.9, 7, 1),  # just under it: the step falls back to the full count
        (2.25, 7, 1),
        (1.55, 7, 3),  # excess 0.55 a row: 4 rows pass the trip's 2
        (1.2, 7, 7),  # the count comes first
    ],
)
def test_the_inverse_curve_raises_sooner_the_larger_the_excursion(
    squared: float, step_row: int, inverse_row: int
) -> None:
    # GIVEN a step whose squared distance is *squared* thresholds
    w = path((50, (0, 0)), (40, (squared**0.5, 0)), (30, (0, 0)), noise=0.0)
    step = EpisodeConfig(raise_rows=8, clear_rows=5, trip_ratio=3.0, trip_rows=1)
    # THEN the step curve raises on its first row or its eighth, the inverse curve in
    # between: after as many rows as its summed excess takes to reach trip_ratio - 1
    assert np.flatnonzero(run(w, step).alarm)[0] == 50 + step_row
    assert np.flatnonzero(run(w, INVERSE).alarm)[0] == 50 + inverse_row


def test_the_inverse_curve_starts_over_below_threshold_and_withdraws_a_glitch() -> None:
    # GIVEN excess that would add up to a trip, broken by one row within the threshold
    w = np.array([[0.0]] * 5 + [[1.6**0.5], [1.0], [1.6**0.5]] + [[0.0]] * 5)
    result = run(w, INVERSE)
    assert not result.alarm.any() and result.state.excess == 0.0
    split = run(w[:6], INVERSE)
    assert split.state.excess == pytest.approx(0.6) and split.state.streak == 1
    # a glitch of two rows at 2.2 thresholds trips on its second and is withdrawn at the
    # next normal row
    glitch = path((50, (0, 0)), (2, (2.2**0.5, 0)), (30, (0, 0)), noise=0.0)
    assert np.flatnonzero(run(glitch, INVERSE).alarm).tolist() == [51]


@given(st.integers(1, 299), st.integers(0, 1000))
def test_the_inverse_curve_continues_exactly_from_a_stored_state(split: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = path(*[(int(rng.integers(5, 60)), tuple(rng.normal(0, 1.2, 2))) for _ in range(6)])
    w = w[:300]
    modes = np.zeros(len(w), dtype=int)
    whole = EpisodeTracker(INVERSE).run(w, modes)
    tracker = EpisodeTracker(INVERSE)
    first = tracker.run(w[:split], modes[:split])
    stored = EpisodeState.from_dict(json.loads(json.dumps(first.state.to_dict())))
    second = tracker.run(w[split:], modes[split:], state=stored)
    assert np.array_equal(np.concatenate([first.alarm, second.alarm]), whole.alarm)


FAST = EpisodeConfig(**{**ENDS.__dict__, "fast_rows": 3, "fast_clear_rows": 4})


def smoothed(raw: np.ndarray, rows: int = 15) -> np.ndarray:
    """A moving mean of *rows* rows, as the model's features average them."""
    total = np.cumsum(raw, axis=0)
    total[rows:] = total[rows:] - total[:-rows]
    return total / np.minimum(np.arange(1, len(raw) + 1), rows)[:, None]


def test_an_alarm_goes_quiet_when_the_short_mean_is_back_before_the_moving_mean() -> None:
    # GIVEN a fault that stops at once, seen through the model's 15-row moving mean
    raw = path((100, (0, 0)), (100, (5, 0)), (100, (0, 0)), noise=0.1)
    w, short = smoothed(raw), smoothed(raw, 3)
    modes = np.zeros(len(w), dtype=int)
    # WHEN the alarm reads the short mean too
    slow = EpisodeTracker(ENDS).run(w, modes)
    fast = EpisodeTracker(FAST).run(w, modes, fast=short)
    # THEN it is raised as before and reported off within a few rows of the fault's end
    slow_end, fast_end = (200 + int(np.argmin(r.alarm[200:])) for r in (slow, fast))
    assert fast.alarm[110:200].all() and np.array_equal(fast.alarm[:200], slow.alarm[:200])
    assert fast_end <= 200 + 3 + FAST.fast_clear_rows < slow_end
    assert not fast.alarm[fast_end:].any()
    # AND the episode itself ran as before (it is only reported off)
    bookkeeping = {"fast_streak", "fast_peak"}
    kept = {k: v for k, v in fast.state.to_dict().items() if k not in bookkeeping}
    assert kept == {k: v for k, v in slow.state.to_dict().items() if k not in bookkeeping}


def test_the_quiet_rule_is_off_without_its_setting_or_its_input() -> None:
    raw = path((100, (0, 0)), (100, (5, 0)), (100, (0, 0)), noise=0.1)
    w, modes = smoothed(raw), np.zeros(300, dtype=int)
    plain = EpisodeTracker(ENDS).run(w, modes).alarm
    assert np.array_equal(EpisodeTracker(ENDS).run(w, modes, fast=smoothed(raw, 3)).alarm, plain)
    assert np.array_equal(EpisodeTracker(FAST).run(w, modes).alarm, plain)


def test_short_dips_inside_a_fault_do_not_quiet_it() -> None:
    raw = path((100, (0, 0)), (200, (5, 0)), noise=0.1)
    raw[150:153] = 0.0
    raw[170:173] = 0.0
    result = EpisodeTracker(FAST).run(smoothed(raw), np.zeros(300, dtype=int), fast=raw)
    assert result.alarm[110:].all()


def test_a_quiet_alarm_whose_fault_comes_back_is_reported_at_once() -> None:
    # the episode goes on while quiet: no new raise delay when the short mean leaves again
    config = EpisodeConfig(raise_rows=5, clear_rows=5, fast_rows=3, fast_clear_rows=4)
    raw = path((100, (0, 0)), (100, (5, 0)), (10, (0, 0)), (90, (5, 0)), noise=0.1)
    result = EpisodeTracker(config).run(
        smoothed(raw), np.zeros(300, dtype=int), fast=smoothed(raw, 3)
    )
    assert not result.alarm[206:210].any() and result.alarm[210 + 2 :].all()


def test_the_moving_mean_must_have_come_down_for_a_quiet_alarm() -> None:
    # a weak fault: the short mean is mostly within the threshold, the moving mean holds
    raw = path((100, (0, 0)), (200, (1.2, 0)), noise=1.0, seed=4)
    w, short, modes = smoothed(raw), smoothed(raw, 3), np.zeros(300, dtype=int)
    quick = EpisodeTracker(FAST).run(w, modes, fast=short)
    held = EpisodeTracker(EpisodeConfig(**{**FAST.__dict__, "fast_drop": 0.3})).run(
        w, modes, fast=short
    )
    assert held.alarm[150:].mean() > quick.alarm[150:].mean()


@given(st.integers(1, 299))
def test_the_quiet_rule_continues_exactly_from_a_stored_state(split: int) -> None:
    raw = path((100, (0, 0)), (60, (5, 0)), (20, (0, 0)), (60, (4, 4)), (60, (0, 0)), seed=3)
    w, short, modes = smoothed(raw), smoothed(raw, 3), np.zeros(300, dtype=int)
    whole = EpisodeTracker(FAST).run(w, modes, fast=short)
    tracker = EpisodeTracker(FAST)
    first = tracker.run(w[:split], modes[:split], fast=short[:split])
    stored = EpisodeState.from_dict(json.loads(json.dumps(first.state.to_dict())))
    second = tracker.run(w[split:], modes[split:], state=stored, fast=short[split:])
    assert np.array_equal(np.concatenate([first.alarm, second.alarm]), whole.alarm)


def test_the_short_mean_is_asked_for_only_where_it_may_be_read() -> None:
    tracker = EpisodeTracker(FAST)
    quiet, loud = np.full(10, 0.5), np.array([0.5, 1.5])
    assert not tracker.may_need_fast(None, quiet) and tracker.may_need_fast(None, loud)
    assert tracker.may_need_fast(EpisodeState(phase="alarm"), quiet)
    assert tracker.may_need_fast(EpisodeState(phase="settling"), quiet)  # it may raise
    assert not EpisodeTracker(ENDS).may_need_fast(EpisodeState(phase="alarm"), loud)
