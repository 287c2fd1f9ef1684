"""The model: contributions are shares, the faulty sensor ranks first, MACHINE_OFF is honoured."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SENSORS, plant_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.inference import model as model_module
from cloud.inference.episodes import DEFAULT_ALARM
from cloud.inference.model import Model, StreamState, TrainConfig, train
from cloud.inference.results import encode_result_rows, result_lines
from edge.errors import ConfigError, UserError

MODEL = train(plant_frame(), TrainConfig(smoothing=3))


def test_contributions_sum_to_one_and_scores_in_unit_interval(frame: pd.DataFrame) -> None:
    model = train(frame)
    result = model.score(plant_frame(seed=7))
    assert result.contributions.shape == (len(result.index), len(SENSORS))
    np.testing.assert_allclose(result.contributions.sum(1), 1.0, atol=1e-9)
    assert (result.contributions >= 0).all()
    assert ((result.score >= 0) & (result.score < 1)).all()
    assert np.array_equal(result.prediction == 1, result.score > 0.5)


def test_normal_data_is_mostly_normal_and_two_modes_are_found(frame: pd.DataFrame) -> None:
    model = train(frame)
    assert model.info["modes"] == 2
    result = model.score(plant_frame(seed=3))
    assert result.prediction.mean() < 0.01


@pytest.mark.parametrize("faulty", range(len(SENSORS)))
def test_injected_fault_sensor_ranks_first(frame: pd.DataFrame, faulty: int) -> None:
    model = train(frame)
    test = plant_frame(seed=5)
    sensor = SENSORS[faulty]
    test.iloc[1000:1100, faulty] += 8 * frame[sensor].std() / 4
    result = model.score(test)
    fault = slice(1000, 1100)
    assert result.prediction[fault].mean() > 0.9
    top = result.contributions[fault].mean(0).argmax()
    assert model.sensors[top] == sensor


def test_machine_off_rows_are_marked_and_not_trained_on(frame: pd.DataFrame) -> None:
    frame = frame.copy()
    frame.iloc[100:200, 0] = 0.0
    config = TrainConfig(off_condition="pump\\motor_current < 1")
    model = train(frame, config)
    assert model.info["training_rows"] == len(frame) - 100
    result = model.score(frame)
    assert result.machine_off[100:200].all() and not result.machine_off[:100].any()
    assert (result.prediction[100:200] == 0).all()


def test_save_load_round_trip_without_pickle(frame: pd.DataFrame, tmp_path: Path) -> None:
    model = train(frame, TrainConfig(smoothing=3, sensors=SENSORS[:3]))
    model.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "model.npz", allow_pickle=False) as arrays:
        assert "mode_phi" in arrays
    loaded = Model.load(tmp_path / "m")
    assert loaded.sensors == SENSORS[:3]
    test = plant_frame(seed=9)
    np.testing.assert_allclose(loaded.score(test).score, model.score(test).score)


def test_template_model_scores_plain_columns_and_names_per_component(frame) -> None:
    plain = frame.rename(columns=lambda c: c.split("\\")[1])
    model = train(plain)
    assert model.is_template and model.components == ()
    assert model.sensor_names("pump-07")[0] == "pump-07\\motor_current"
    asset_model = train(frame)
    np.testing.assert_allclose(asset_model.score(plain).score, model.score(plain).score)


def test_resampling_labels_bins_by_their_right_edge(frame: pd.DataFrame) -> None:
    from cloud.inference.model import resample

    out = resample(frame.iloc[:10], "PT5M")
    assert list(out.index.strftime("%H:%M")) == ["00:00", "00:05", "00:10"]
    assert out.iloc[1, 0] == pytest.approx(frame.iloc[1:6, 0].mean())
    model = train(frame, TrainConfig(sampling_rate="PT5M"))
    assert len(model.score(frame.iloc[:10]).index) == 3


def test_bad_config_and_data_name_the_problem(frame: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="TargetSamplingRate"):
        TrainConfig(sampling_rate="PT2M")
    with pytest.raises(ConfigError, match="OffCondition"):
        TrainConfig(off_condition="pump\\flow = 1")
    with pytest.raises(ConfigError, match=r"OffCondition .*1e999 is not a finite number"):
        TrainConfig(off_condition="pump\\flow < 1e999")
    with pytest.raises(UserError, match="pump\\\\flow"):
        train(frame).score(frame.drop(columns=["pump\\flow"]))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=4, max_size=4),
        min_size=1,
        max_size=30,
    )
)
def test_any_reading_gets_shares_summing_to_one(rows: list[list[float]]) -> None:
    frame = pd.DataFrame(
        rows,
        columns=list(SENSORS),
        index=pd.date_range("2026-03-01", periods=len(rows), freq="1min", tz="UTC"),
    )
    result = MODEL.score(frame)
    np.testing.assert_allclose(result.contributions.sum(1), 1.0, atol=1e-9)
    assert ((result.score >= 0) & (result.score <= 1)).all()
    lines = result_lines(result, MODEL.sensors)
    for line in lines:
        assert abs(sum(d["value"] for d in line["diagnostics"]) - 1) < 1e-9


def test_unlabelled_fault_in_training_does_not_become_normal(frame: pd.DataFrame) -> None:
    contaminated = frame.copy()
    contaminated.iloc[1500:1540, 1] -= 60  # a fault nobody labelled
    model = train(contaminated)
    assert model.info["outlier_rows_left_out"] == 40
    assert model.score(contaminated.iloc[1500:1540]).prediction.mean() > 0.9
    clean = train(frame)
    assert clean.info["outlier_rows_left_out"] == 0


def test_signed_deviations_square_to_the_contributions_and_point_at_the_fault(
    frame: pd.DataFrame,
) -> None:
    model = train(frame.iloc[:1500], TrainConfig(seed=1))
    bad = frame.iloc[1500:].copy()
    bad[SENSORS[1]] += 60.0
    _, x, _ = model.prepare(bad)
    y, factor, _ = model.features(x)
    w, modes = model.deviations(y, factor)
    assert np.allclose(w**2, model.contributions(y, factor))
    assert set(np.unique(modes)) <= set(range(len(model.centroids)))
    flow = w[:, 1]
    assert np.median(flow) > 0 and np.abs(flow).mean() > np.abs(np.delete(w, 1, axis=1)).mean()


def test_alarm_rules_and_their_change_limit_travel_with_the_model(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    model = train(frame, TrainConfig(smoothing=3))
    assert model.config.alarm == DEFAULT_ALARM and model.change_limit is not None
    model.save(tmp_path / "m")
    loaded = Model.load(tmp_path / "m")
    assert loaded.config.alarm == DEFAULT_ALARM
    assert loaded.change_limit == pytest.approx(model.change_limit)
    plain = train(frame, TrainConfig(alarm=None))
    assert plain.change_limit is None and "change_limit" not in plain._arrays()


def test_a_model_saved_before_alarm_rules_loads_without_them(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    files = train(frame, TrainConfig(alarm=None)).to_artifacts()
    meta = json.loads(files["model.json"])
    del meta["config"]["alarm"]  # as model.json was written before the field existed
    files["model.json"] = json.dumps(meta).encode()
    old = Model.from_artifacts(files, "old")
    assert old.config.alarm is None and old.change_limit is None


def test_a_stream_state_stored_as_json_continues_the_features(frame: pd.DataFrame) -> None:
    model = train(frame, TrainConfig(smoothing=5, difference="auto", difference_above=0.0))
    _, x, _ = model.prepare(frame)
    whole, _, _ = model.features(x)
    first, _, state = model.features(x[:50])
    stored = StreamState.from_dict(json.loads(json.dumps(state.to_dict())), x.shape[1])
    second, _, _ = model.features(x[50:], stored)
    np.testing.assert_allclose(np.vstack([first, second]), whole)


def test_a_long_history_sets_the_change_limit_on_a_sample_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = plant_frame(rows=60_000, seed=5)
    whole = train(history, TrainConfig(smoothing=3))
    monkeypatch.setattr(model_module, "CHANGE_LIMIT_ROWS", 20_000)
    sampled = train(history, TrainConfig(smoothing=3))
    assert sampled.threshold == whole.threshold  # the model itself is the same
    assert sampled.change_limit == pytest.approx(whole.change_limit, rel=0.2)
    assert sampled.change_limit != whole.change_limit  # fewer rows were used


ROW_BY_ROW = train(plant_frame(), TrainConfig(alarm=None))
"""A model without alarm rules: ``prediction`` comes from each row's score alone."""


def _written(model: Model, frame: pd.DataFrame) -> list[dict]:
    """The results.jsonl lines of *frame* as a user reads them back."""
    index, x, off = model.prepare(frame)
    result = model.score_arrays(index, x, off)
    return [json.loads(line) for line in encode_result_rows(result, model.sensors).splitlines()]


@settings(max_examples=60, deadline=None)
@given(target=st.floats(0.499990, 0.500010))
def test_prediction_is_one_exactly_when_the_written_score_is_above_one_half(
    target: float,
) -> None:
    # GIVEN a model whose threshold puts one row's score at *target*, near 0.5
    frame = plant_frame(rows=20, seed=11, start="2026-01-02")
    raw = ROW_BY_ROW.score_arrays(*ROW_BY_ROW.prepare(frame)).raw
    model = copy.copy(ROW_BY_ROW)
    model.threshold = float(raw[10]) * (1 / target - 1)
    # WHEN its lines are written, THEN each shows L4E's rule (§5): prediction = 1 exactly
    # when anomaly_score > 0.5, for the score as written (5 decimals), not a hidden digit
    for line in _written(model, frame):
        assert line["prediction"] == int(line["anomaly_score"] > 0.5), line


def test_a_reading_too_large_to_score_is_predicted_with_its_written_score_of_one() -> None:
    # GIVEN readings whose squares overflow: the written score is its limit, 1
    frame = plant_frame(rows=20, seed=11, start="2026-01-02")
    frame.iloc[10:13, 1] = [1e200, 1e300, -1e300]
    with np.errstate(all="ignore"):
        lines = _written(ROW_BY_ROW, frame)
    # THEN those rows are predicted abnormal, as their score says
    assert [(d["prediction"], d["anomaly_score"]) for d in lines[10:13]] == [(1, 1.0)] * 3
    assert all(d["prediction"] == int(d["anomaly_score"] > 0.5) for d in lines)
