"""Widget figures from result rows, and PSI drift."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.dashboard import analysis
from cloud.dashboard.queries import Row
from cloud.inference import drift


def row(t: float, flagged: bool, top: str = "a") -> Row:
    shares = (("a", 0.7), ("b", 0.3)) if top == "a" else (("a", 0.2), ("b", 0.8))
    return Row(
        t, int(flagged), "ANOMALY_DETECTED" if flagged else "", 0.9 if flagged else 0.1, shares
    )


def test_events_are_runs_of_anomalous_rows_split_by_gaps() -> None:
    rows = [
        row(i * 10.0, 5 <= i < 10 or 20 <= i < 22, top="b" if i >= 20 else "a") for i in range(30)
    ]
    rows += [row(2000.0, True), row(3000.0, True)]  # 1000 s apart: two events
    found = analysis.events(rows, gap_s=900)
    assert [(e.start, e.end, e.rows, e.top_sensor) for e in found] == [
        (50.0, 90.0, 5, "a"),
        (200.0, 210.0, 2, "b"),
        (2000.0, 2000.0, 1, "a"),
        (3000.0, 3000.0, 1, "a"),
    ]
    [day] = analysis.events_per_day(found)
    assert day == {"day": "1970-01-01", "events": 4, "mean_duration_s": 12.5}


def test_signal_importance_uses_anomalous_rows_when_there_are_any() -> None:
    rows = [row(0, False, "b"), row(10, True, "a")]
    items, basis = analysis.signal_importance(rows)
    assert basis == "anomalous rows" and items[0] == {"name": "a", "value": 0.7}
    items, basis = analysis.signal_importance([row(0, False, "b")])
    assert basis == "all rows" and items[0]["name"] == "b"


def test_ribbon_and_rate_count_every_row_once() -> None:
    rows = [row(float(i), i % 4 == 0) for i in range(100)]
    cells = analysis.ribbon(rows, 0, 100, cells=10)
    assert sum(c["rows"] for c in cells) == 100 and sum(c["anomalous"] for c in cells) == 25
    [rate] = analysis.anomaly_rate_per_day(rows)
    assert rate["anomaly_rate"] == 0.25


def test_downsampling_keeps_the_peak() -> None:
    rows = [Row(float(i), 0, "", 0.1, ()) for i in range(5000)]
    rows[3333] = Row(3333.0, 1, "", 0.99, ())
    thin = analysis.downsample(rows, 100)
    assert len(thin) == 100 and max(r.score for r in thin) == 0.99


@given(
    st.lists(st.floats(0.01, 1), min_size=2, max_size=12),
    st.lists(st.floats(0.01, 1), min_size=2, max_size=12),
)
def test_psi_is_zero_for_the_same_distribution_and_positive_otherwise(
    a: list[float], b: list[float]
) -> None:
    n = min(len(a), len(b))
    p = np.asarray(a[:n]) / sum(a[:n])
    q = np.asarray(b[:n]) / sum(b[:n])
    assert drift.psi(p, p) == pytest.approx(0.0, abs=1e-12)
    assert drift.psi(p, q) >= -1e-12


def test_a_shifted_sensor_drifts_and_a_steady_one_does_not() -> None:
    rng = np.random.default_rng(1)
    training = rng.normal(50, 2, (5000, 2))
    profile = drift.training_profile(training, ["steady", "shifted"])
    assert len(profile["steady"]["expected"]) == 10
    assert sum(profile["steady"]["expected"]) == pytest.approx(1.0, abs=1e-5)
    steady = drift.sensor_drift(profile["steady"], rng.normal(50, 2, 2000))
    shifted = drift.sensor_drift(profile["shifted"], rng.normal(53, 2, 2000))
    assert steady["level"] == "none" and steady["psi"] < 0.05
    assert shifted["level"] == "significant" and shifted["psi"] > 0.25
    assert drift.sensor_drift(profile["steady"], np.array([np.nan]))["level"] == "no data"


def test_a_constant_sensor_gets_one_bin_not_empty_ones() -> None:
    profile = drift.training_profile(np.ones((100, 1)), ["const"])
    assert profile["const"]["edges"] == [1.0]
    assert drift.sensor_drift(profile["const"], np.ones(10))["psi"] == pytest.approx(0.0, abs=1e-9)


def test_a_psi_on_a_few_rows_is_noise_and_is_not_judged() -> None:
    """30 readings drawn from the training distribution itself: their PSI is noise (about
    two in three such samples read above 0.25), so the level says so instead of drift."""
    rng = np.random.default_rng(2)
    entry = drift.training_profile(rng.normal(0, 1, (50_000, 1)), ["x"])["x"]
    few = [drift.sensor_drift(entry, rng.normal(0, 1, 30)) for _ in range(50)]
    assert max(r["psi"] for r in few) >= drift.SIGNIFICANT  # what the level used to say
    assert {r["level"] for r in few} == {"too few rows"}
    assert not any(drift.drifted(r, drift.SIGNIFICANT) for r in few)
    assert drift.min_rows(entry) == 218  # 10 bins: chi2(9) 99 % / 0.1, Yurdakul (2018)
    assert drift.sensor_drift(entry, rng.normal(0, 1, 217))["level"] == "too few rows"
    assert drift.sensor_drift(entry, rng.normal(0, 1, 218))["level"] == "none"


def test_the_noise_bound_holds_for_rows_from_the_training_distribution() -> None:
    """The PSI of independent rows from the training distribution stays below the noise
    bound ``sensor_drift`` reports in about 99 % of samples."""
    rng = np.random.default_rng(4)
    entry = drift.training_profile(rng.normal(0, 1, (50_000, 1)), ["x"])["x"]
    results = [drift.sensor_drift(entry, rng.normal(0, 1, 300)) for _ in range(400)]
    above = sum(r["psi"] > r["noise"] for r in results)
    assert above <= 12  # 3 % of 400: the bound's 1 % with room for chance
    assert results[0]["noise"] == pytest.approx(21.666 * (1 / 300 + 1 / 50_000), rel=1e-3)


def test_a_narrower_mix_of_the_trained_states_is_not_a_shift_out_of_them() -> None:
    """A plant trained over three load levels and now running at one of them: the PSI is
    large (the week's mix against a few hours at one level), but no reading is outside the
    training range, so it is not a reason to retrain; readings beyond the range are."""
    rng = np.random.default_rng(3)
    levels = np.repeat([2000.0, 2500.0, 2950.0], 3000)
    entry = drift.training_profile((levels + rng.normal(0, 5, levels.size))[:, None], ["rpm"])[
        "rpm"
    ]
    at_high = drift.sensor_drift(entry, 2950 + rng.normal(0, 5, 700))
    assert at_high["level"] == "significant" and at_high["psi"] > 2
    assert at_high["outside"] < drift.OUTSIDE  # the top 0.5 % of training is at this level
    assert not drift.drifted(at_high, drift.SIGNIFICANT)
    beyond = drift.sensor_drift(entry, 3300 + rng.normal(0, 5, 700))
    assert beyond["outside"] == 1.0 and drift.drifted(beyond, drift.SIGNIFICANT)
    old = {k: v for k, v in entry.items() if k != "range"}  # profiled before the range
    kept = drift.sensor_drift(old, 2950 + rng.normal(0, 5, 700))
    assert kept["outside"] is None and drift.drifted(kept, drift.SIGNIFICANT)


def test_too_few_training_rows_judge_no_window() -> None:
    entry = drift.training_profile(np.random.default_rng(5).normal(0, 1, (150, 1)), ["x"])["x"]
    assert drift.min_rows(entry) is None
    assert drift.sensor_drift(entry, np.zeros(100_000))["level"] == "too few rows"
    assert (
        drift.min_rows(drift.training_profile(np.ones((100, 1)), ["c"])["c"]) == 1
    )  # constant: no noise


@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 6),
    st.integers(300, 3000),
    st.floats(0.0, 1.0),
)
def test_readings_within_the_training_range_are_never_a_retrain_reason_and_beyond_it_are(
    seed: int, levels: int, rows: int, where: float
) -> None:
    """Whatever the training mix of levels and wherever in its range the recent readings
    sit, they are no reason to retrain; the same number of readings above the range is."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 100, levels)
    training = (np.repeat(centres, 2000) + rng.normal(0, 1, 2000 * levels))[:, None]
    entry = drift.training_profile(training, ["x"])["x"]
    lo, hi = entry["range"]
    inside = np.clip(lo + where * (hi - lo) + rng.normal(0, 0.5, rows), lo, hi)
    assert not drift.drifted(drift.sensor_drift(entry, inside), drift.SIGNIFICANT)
    above = drift.sensor_drift(entry, hi + drift.MARGIN * (hi - lo) + 1 + rng.uniform(0, 10, rows))
    assert above["outside"] == 1.0 and drift.drifted(above, drift.SIGNIFICANT)


def test_a_level_just_past_the_training_extremes_is_still_within_range() -> None:
    """Load levels vary a little from one shift to the next (the simulator: 1 % of speed),
    so a week of training sets its range at the week's extreme shift; the next week's
    shift 20 rpm above it is the same state, not a new one (seed 21 of the demo's pumps,
    18 of 39 healthy days flagged on the bare range, 3 with the margin)."""
    rng = np.random.default_rng(6)
    levels = np.repeat([2000.0, 2500.0, 2930.0, 2950.0, 2960.0], 2000)
    entry = drift.training_profile((levels + rng.normal(0, 3, levels.size))[:, None], ["rpm"])[
        "rpm"
    ]
    next_week = drift.sensor_drift(entry, 2980 + rng.normal(0, 3, 700))
    assert next_week["psi"] > drift.SIGNIFICANT and next_week["outside"] == 0.0
    assert not drift.drifted(next_week)
