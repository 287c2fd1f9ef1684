"""`model health` on a plant that runs through load levels: the drift it reports, and the
retrain suggestion, for a window at one trained level, beyond the training range, and on a
handful of rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from cloud.cli.main import main
from cloud.dashboard.api import DashboardApi
from cloud.dashboard.app import create_app
from cloud.dashboard.model_health import model_health
from cloud.dashboard.queries import DataView
from cloud.dashboard.server import LOOPBACK_NAMES
from cloud.inference import drift
from cloud.inference.model import TrainConfig, train
from cloud.runtime.layout import DataLayout

START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC).timestamp()
LEVELS = (2000.0, 2500.0, 2950.0)


def _rows(speed: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    rpm = speed + rng.normal(0, 5, len(speed))
    return pd.DataFrame({"rpm": rpm, "temp": 20 + 0.01 * rpm + rng.normal(0, 0.3, len(speed))})


def _write_window(root: Path, asset: str, t0: float, frame: pd.DataFrame) -> None:
    stamps = [
        datetime.fromtimestamp(t0 + 10 * i, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        for i in range(len(frame))
    ]
    name = datetime.fromtimestamp(t0 + 300, UTC).strftime("%Y%m%d%H%M%S")
    path = DataLayout.at(root).bucket / "input" / f"{asset}_{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(
        f"{s},{r:.1f},{t:.2f}" for s, r, t in zip(stamps, frame.rpm, frame.temp, strict=True)
    )
    path.write_text("Timestamp,rpm,temp\n" + body + "\n")


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days of history, 8 hours at each load level in turn, and a one-mode model of
    it (as the demo's); then two hours of pump-01 at the top level, pump-02 above anything
    trained on, and 20 readings of pump-03."""
    root = tmp_path_factory.mktemp("plant")
    rng = np.random.default_rng(11)
    speed = np.repeat(np.tile(LEVELS, 3), 480)  # 1-minute rows, 8 h per level
    history = _rows(speed, rng)
    history.index = pd.date_range("2026-01-02 06:00", periods=len(speed), freq="1min", tz="UTC")
    DataLayout.at(root).registry().save("pumps", train(history, TrainConfig(max_modes=1)))
    for w in range(24):
        t0 = START + 300 * w
        _write_window(root, "pump-01", t0, _rows(np.full(30, LEVELS[2]), rng))
        _write_window(root, "pump-02", t0, _rows(np.full(30, 3300.0), rng))
    _write_window(root, "pump-03", START, _rows(np.full(20, LEVELS[1]), rng))
    empty = DataLayout.at(root).bucket / "input" / "pump-04_20260105060500.csv"
    empty.write_text("Timestamp,rpm,temp\n")  # a sensor with no readings: no figures
    return root


def test_a_window_at_one_trained_level_is_not_a_reason_to_retrain(plant: Path) -> None:
    doc = model_health(DataView(plant))
    assets = {a["key"]: a for a in doc["assets"]}
    steady = assets["pump-01"]
    assert steady["max_psi"] > 1  # two hours at one of three levels against all of them
    assert all(s["outside"] < 0.05 for s in steady["drift"])
    assert not steady["retrain"] and steady["drifted"] == []
    assert "within the training range" in steady["note"]
    beyond = assets["pump-02"]
    assert beyond["retrain"] and "rpm" in beyond["drifted"]
    assert beyond["reasons"][0].startswith("rpm drifted: PSI")
    assert "outside the training range" in beyond["reasons"][0]
    assert doc["retrain"] == ["pump-02"]


def test_a_handful_of_rows_is_not_judged(plant: Path) -> None:
    few = next(a for a in model_health(DataView(plant))["assets"] if a["key"] == "pump-03")
    assert {s["level"] for s in few["drift"]} == {"too few rows"}
    assert not few["retrain"] and "too few rows" in few["note"]


def test_the_cli_says_why_it_does_not_suggest_retraining(
    plant: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "health", "--data", str(plant)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert " no " in lines["pump-01"] and "within the training range" in lines["pump-01"]
    assert " yes " in lines["pump-02"] and "rpm" in lines["pump-02"]
    assert " no " in lines["pump-03"] and "too few rows" in lines["pump-03"]


def test_the_page_shows_a_high_psi_within_range_as_such(plant: Path) -> None:
    api = DashboardApi(DataView(plant))
    client = TestClient(create_app(api, allowed_hosts=LOOPBACK_NAMES), base_url="http://127.0.0.1")
    page = client.get("/model-health").text
    steady = page[page.index('data-asset="pump-01"') : page.index('data-asset="pump-02"')]
    assert 'class="drift-within-range"' in steady and "drift-significant" not in steady
    beyond = page[page.index('data-asset="pump-02"') :]
    assert 'class="drift-significant"' in beyond
    assert page.count('class="drift-no-data"') == 2  # pump-04: both sensors, no readings


def _model_and_live(root: Path, config: TrainConfig, history: pd.DataFrame) -> None:
    DataLayout.at(root).registry().save("pumps", train(history, config))


def test_machine_off_rows_are_left_out_of_drift_as_training_left_them_out(tmp_path: Path) -> None:
    """A model with an off condition trains on running rows only; a window with an hour
    stopped is not drift out of the training range."""
    rng = np.random.default_rng(12)
    speed = np.repeat(np.tile([*LEVELS, 0.0], 3), 360)  # 6 h per level, and 6 h stopped
    history = _rows(speed, rng)
    history.index = pd.date_range("2026-01-02 06:00", periods=len(speed), freq="1min", tz="UTC")
    _model_and_live(tmp_path, TrainConfig(max_modes=1, off_condition="rpm < 100"), history)
    for w in range(24):
        level = 0.0 if w < 8 else LEVELS[1]
        _write_window(tmp_path, "pump-01", START + 300 * w, _rows(np.full(30, level), rng))
    asset = model_health(DataView(tmp_path))["assets"][0]
    assert asset["drift"][0]["rows"] == 480  # the 240 stopped rows left out
    assert not asset["retrain"], asset["reasons"]


def test_a_model_on_resampled_rows_is_compared_with_resampled_rows(tmp_path: Path) -> None:
    """A model trained at PT1M learns one-minute means; raw ten-second readings spread
    wider than those, which is not drift."""
    rng = np.random.default_rng(13)
    history = pd.DataFrame(
        {"rpm": rng.normal(2500, 20, 6 * 1440), "temp": rng.normal(45, 1, 6 * 1440)},
        index=pd.date_range("2026-01-04 06:00", periods=6 * 1440, freq="10s", tz="UTC"),
    )
    _model_and_live(tmp_path, TrainConfig(max_modes=1, sampling_rate="PT1M"), history)
    for w in range(144):
        frame = pd.DataFrame({"rpm": rng.normal(2500, 20, 30), "temp": rng.normal(45, 1, 30)})
        _write_window(tmp_path, "pump-01", START + 300 * w, frame)
    asset = model_health(DataView(tmp_path))["assets"][0]
    assert asset["drift"][0]["rows"] == 721  # twelve hours of one-minute means (4,320 raw)
    assert not asset["retrain"], asset["reasons"]
    assert asset["max_psi"] < drift.MODERATE


def test_a_sensor_whose_column_holds_a_backslash_is_read_from_its_whole_column(
    tmp_path: Path,
) -> None:
    """``pump-01\\valve\\pos`` is column ``valve\\pos`` of pump-01 (a component holds no
    ``\\``, a column may): drift and the raw traces read that column, not one named ``pos``."""
    rng = np.random.default_rng(14)
    speed = np.repeat(np.tile(LEVELS, 3), 480)
    history = _rows(speed, rng).rename(
        columns={"rpm": "pump-01\\rpm", "temp": "pump-01\\valve\\pos"}
    )
    history.index = pd.date_range("2026-01-02 06:00", periods=len(speed), freq="1min", tz="UTC")
    _model_and_live(tmp_path, TrainConfig(max_modes=1), history)
    for w in range(12):
        _write_window(tmp_path, "pump-01", START + 300 * w, _rows(np.full(30, LEVELS[1]), rng))
    for path in (DataLayout.at(tmp_path).bucket / "input").iterdir():
        path.write_text(path.read_text().replace("Timestamp,rpm,temp", "Timestamp,rpm,valve\\pos"))
    asset = model_health(DataView(tmp_path))["assets"][0]
    drifts = {s["sensor"]: s for s in asset["drift"]}
    assert drifts["valve\\pos"]["rows"] == 360
    traces, unreadable = DataView(tmp_path).traces(
        "pump-01", ["pump-01\\valve\\pos"], START, START + 3600
    )
    assert unreadable == [] and len(traces["pump-01\\valve\\pos"]) == 360
