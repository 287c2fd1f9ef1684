"""Point-wise counts, NAB as SKAB scores it, debounce and alarm changepoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.inference.alarm import Debouncer, debounce
from cloud.inference.evaluation import (
    NabTally,
    PointCounts,
    changepoints_from_alarms,
    detection_delays,
    evaluate,
    nab_tally,
    nab_windows,
    skab_default_width,
)

INDEX = pd.date_range("2020-03-09 10:00", periods=300, freq="1s")


def cps(*rows: int) -> np.ndarray:
    out = np.zeros(len(INDEX), dtype=int)
    out[list(rows)] = 1
    return out


def test_point_counts_rates() -> None:
    counts = PointCounts.of(np.array([1, 1, 0, 0, 0]), np.array([1, 0, 1, 0, 0]))
    assert (counts.tp, counts.fp, counts.fn, counts.tn) == (1, 1, 1, 2)
    assert counts.f1 == pytest.approx(0.5)
    assert counts.far_pct == pytest.approx(100 / 3)
    assert counts.mar_pct == pytest.approx(50.0)


def test_nab_perfect_null_and_late_detections() -> None:
    truth = cps(100, 200)
    assert nab_tally(INDEX, truth, truth).normalised() == {
        "standard": 100.0,
        "lowfp": 100.0,
        "lowfn": 100.0,
    }
    assert nab_tally(INDEX, truth, cps()).normalised()["standard"] == 0.0
    # detections at each window's very end score A_fp: 100 * (2 * -0.11 + 2) / 4
    assert nab_tally(INDEX, truth, cps(160, 260)).normalised()["standard"] == 44.5
    middle = nab_tally(INDEX, truth, cps(130, 230)).raw["standard"] / 2
    assert middle == pytest.approx((1 - 0.11) / 2, abs=0.01)


def test_nab_false_positives_cost_a_fp_and_only_first_hit_counts() -> None:
    truth = cps(100)
    one = nab_tally(INDEX, truth, cps(100)).raw
    more = nab_tally(INDEX, truth, cps(100, 101, 10, 290)).raw
    assert more["standard"] == pytest.approx(one["standard"] - 2 * 0.11)
    assert more["lowfp"] == pytest.approx(one["lowfp"] - 2 * 0.22)


def test_overlapping_windows_cut_the_right_one() -> None:
    windows = nab_windows([INDEX[100], INDEX[130]], pd.Timedelta(seconds=60))
    assert windows == [(INDEX[100], INDEX[160]), (INDEX[160], INDEX[190])]


def test_skab_default_window_ends_at_the_changepoint_and_credits_early_detection() -> None:
    truth = cps(100, 200)
    width = skab_default_width(INDEX, truth)
    assert width.total_seconds() == pytest.approx(299 / 3 * 0.1)
    assert nab_windows([INDEX[100]], width, "left") == [(INDEX[100] - width, INDEX[100])]
    early = nab_tally(INDEX, truth, cps(91, 191), width, "left").normalised()["standard"]
    late = nab_tally(INDEX, truth, cps(105, 205), width, "left").normalised()["standard"]
    assert early > 90.0
    assert late == pytest.approx(100 * (2 * -0.11 + 2 * -1 + 2) / 4)  # two misses, two FPs
    assert nab_tally(INDEX, truth, cps(105, 205)).normalised()["standard"] > 80.0


def test_tallies_add_across_files() -> None:
    a = nab_tally(INDEX, cps(100), cps(100))
    b = nab_tally(INDEX, cps(100), cps())
    assert (a + b).normalised()["standard"] == 50.0
    assert (NabTally.zero() + a).normalised() == a.normalised()


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 5))
def test_debounce_is_causal_and_streams_like_batch(flags: list[bool], rows: int) -> None:
    batch = debounce(np.array(flags, dtype=bool), rows)
    streamed = Debouncer(rows)
    assert [streamed.update(f) for f in flags] == batch.tolist()
    if rows == 1:
        assert batch.tolist() == flags
    for i in range(len(flags)):  # an alarm state change needs `rows` agreeing flags
        if i and batch[i] != batch[i - 1]:
            assert all(f == batch[i] for f in flags[max(0, i - rows + 1) : i + 1])


@given(st.lists(st.booleans(), max_size=80), st.integers(1, 5), st.lists(st.integers(1, 9)))
def test_debounce_in_pieces_flips_where_row_by_row_does(
    flags: list[bool], rows: int, cuts: list[int]
) -> None:
    one_by_one = Debouncer(rows)
    expected = [one_by_one.update(f) for f in flags]
    pieces, got, start = Debouncer(rows), [], 0
    for size in [*cuts, len(flags)]:
        got += pieces.run(np.array(flags[start : start + size], dtype=bool)).tolist()
        start += size
    assert got == expected
    assert (pieces.active, pieces.streak) == (one_by_one.active, one_by_one.streak)


def test_changepoints_mark_raise_and_clear() -> None:
    assert changepoints_from_alarms(np.array([0, 1, 1, 0, 0, 1])).tolist() == [0, 1, 0, 1, 0, 1]


def test_evaluate_reports_delays_and_false_events() -> None:
    index = pd.date_range("2026-01-01", periods=10, freq="1min", tz="UTC")
    prediction = np.array([0, 1, 0, 0, 0, 1, 1, 0, 0, 0])
    labels = [(index[4], index[7])]
    doc = evaluate(index, prediction, np.zeros(10, dtype=bool), labels)
    assert doc["events_detected"] == 1 and doc["false_alarm_events"] == 1
    assert doc["detection_delay_s"]["per_event"] == [60.0]
    assert doc["precision"] == round(2 / 3, 4)
    assert detection_delays(index, np.zeros(10), prediction) == []
