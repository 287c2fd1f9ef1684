"""The monitor: the model plus its alarm rules, one asset's series scored in any pieces."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.inference.episodes import DEFAULT_ALARM, AlarmConfig
from cloud.inference.model import TrainConfig, train
from cloud.inference.monitor import Monitor, MonitorState
from cloud.inference.results import result_lines
from edge.errors import ConfigError

CONFIG = TrainConfig(smoothing=15, variance_kept=0.7, max_modes=1, threshold_margin=2.0)


def plant(seed: int = 0, rows: int = 1100, settle: float = -1.5) -> pd.DataFrame:
    """1 Hz, four sensors; flow drops by 4 sigma from row 600 to 850, after which the
    plant runs *settle* sigma of flow from where it started."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2026-03-01", periods=rows, freq="1s", tz="UTC")
    load = 50 + rng.normal(0, 1, rows)
    frame = pd.DataFrame(
        {
            "current": 0.2 * load + rng.normal(0, 0.2, rows),
            "flow": 3.0 * load + rng.normal(0, 2.0, rows),
            "pressure": rng.normal(2.0, 0.05, rows),
            "vibration": rng.normal(1.0, 0.05, rows),
        },
        index=index,
    )
    flow = frame.columns.get_loc("flow")
    frame.iloc[600:850, flow] -= 4 * 3.6
    frame.iloc[850:, flow] += settle * 3.6
    return frame


LIVE = plant()
MODEL = train(LIVE.iloc[:400], CONFIG)


def test_an_alarm_is_raised_held_and_ends_where_the_plant_settles() -> None:
    out = Monitor(MODEL).score(LIVE)
    alarm = out.result.prediction == 1
    assert not alarm[:600].any()
    assert alarm[640:850].all()
    assert not alarm[900:].any() and out.ended[850:900].any()


def test_lines_keep_l4e_rules_score_above_half_exactly_on_alarm_and_shares_sum_to_one() -> None:
    out = Monitor(MODEL).score(LIVE)
    lines = result_lines(out.result, MODEL.sensor_names("pump"))
    assert all((line["anomaly_score"] > 0.5) == (line["prediction"] == 1) for line in lines)
    for line in lines:
        assert sum(d["value"] for d in line["diagnostics"]) == pytest.approx(1, abs=1e-5)
    raised = next(line for line in lines if line["prediction"] == 1)
    top = max(raised["diagnostics"], key=lambda d: d["value"])
    assert top["name"] == "pump\\flow"


QUIET = AlarmConfig(
    replace(DEFAULT_ALARM.episodes, fast_rows=5, fast_clear_rows=5), DEFAULT_ALARM.changes
)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=8), st.sampled_from([None, QUIET]))
def test_any_pieces_with_the_state_stored_as_json_give_the_whole_series(
    sizes: list[int], alarm: AlarmConfig | None
) -> None:
    monitor = Monitor(MODEL, alarm)
    whole = monitor.score(LIVE)
    index, x, off = MODEL.prepare(LIVE)
    state, start, predictions, scores = None, 0, [], []
    for size in [*sizes, len(LIVE)]:
        if start >= len(LIVE):
            break
        part = slice(start, start + size)
        out = monitor.score_arrays(index[part], x[part], off[part], state)
        predictions.append(out.result.prediction)
        scores.append(out.result.score)
        state = MonitorState.from_dict(json.loads(json.dumps(out.state.to_dict())), 4)
        start += size
    assert np.array_equal(np.concatenate(predictions), whole.result.prediction)
    np.testing.assert_allclose(np.concatenate(scores), whole.result.score, atol=1e-9)


def test_the_state_handed_in_is_left_as_it_was() -> None:
    monitor = Monitor(MODEL)
    first = monitor.score(LIVE.iloc[:700])
    before = json.dumps(first.state.to_dict())
    monitor.score(LIVE.iloc[700:], first.state)
    assert json.dumps(first.state.to_dict()) == before
    assert first.state.through == LIVE.index[699].timestamp()


def test_a_model_without_alarm_rules_predicts_row_by_row() -> None:
    plain = train(LIVE.iloc[:400], TrainConfig(smoothing=15, max_modes=1, alarm=None))
    out = Monitor(plain).score(LIVE)
    direct = plain.score(LIVE)
    assert np.array_equal(out.result.prediction, direct.prediction)
    np.testing.assert_allclose(out.result.score, direct.score)
    assert out.result.prediction[900:].mean() > 0.5  # the settled plant: never ends


def test_machine_off_rows_hold_the_alarm_state_and_carry_uniform_shares() -> None:
    frame = LIVE.copy()
    frame.iloc[700:720, frame.columns.get_loc("current")] = 0.0
    model = train(
        LIVE.iloc[:400], TrainConfig(**{**CONFIG.__dict__, "off_condition": "current < 1"})
    )
    out = Monitor(model).score(frame)
    assert out.result.machine_off[700:720].all()
    assert not out.result.prediction[700:720].any()
    np.testing.assert_allclose(out.result.contributions[700:720], 0.25)
    assert out.result.prediction[720:850].all()  # the episode goes on after the stop


def test_the_quiet_rule_reports_a_fault_over_when_its_rows_are_back() -> None:
    # GIVEN a fault that ends with the plant back where it started
    back = plant(settle=0.0)
    usual = Monitor(MODEL).score(back).result.prediction == 1
    quiet = Monitor(MODEL, QUIET).score(back).result.prediction == 1
    # THEN the alarm is the same while the fault lasts and is reported over sooner
    assert quiet[640:850].all() and np.array_equal(quiet[:850], usual[:850])
    assert quiet[850:].sum() < usual[850:].sum()
    assert not quiet[850 + 15 :].any()


def test_a_short_mean_longer_than_the_models_is_a_config_error() -> None:
    alarm = AlarmConfig(replace(DEFAULT_ALARM.episodes, fast_rows=16), DEFAULT_ALARM.changes)
    with pytest.raises(ConfigError, match="fast_rows 16"):
        Monitor(MODEL, alarm)


@pytest.mark.parametrize("overflow", ["one_square", "every_sensor_at_the_largest_double"])
def test_a_reading_too_large_to_score_writes_a_score_that_agrees_with_its_prediction(
    overflow: str,
) -> None:
    # GIVEN rules that raise on a count of rows only, and a row whose arithmetic overflows
    # (to an infinite deviation, or to inf - inf: no number at all)
    episodes = replace(DEFAULT_ALARM.episodes, trip_ratio=None)
    model = train(plant(rows=600), replace(CONFIG, alarm=replace(DEFAULT_ALARM, episodes=episodes)))
    frame = plant(seed=3, rows=60)
    if overflow == "one_square":
        frame.iloc[30, frame.columns.get_loc("flow")] = 1e200
    else:
        frame.iloc[30] = 1.7e308
    with np.errstate(all="ignore"):
        result = Monitor(model).score_arrays(*model.prepare(frame), None).result
    lines = [json.loads(json.dumps(d)) for d in result_lines(result, model.sensors)]
    # THEN that row is not an alarm yet, and its written score says so (0.5, not 1.0 under
    # prediction 0): L4E's rule, prediction = 1 exactly when anomaly_score > 0.5 (§5)
    assert lines[30]["prediction"] == 0
    assert all(d["prediction"] == int(d["anomaly_score"] > 0.5) for d in lines), lines[30]
