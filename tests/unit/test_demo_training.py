"""The demo's fleet model trains on every pump's history, and says so truthfully."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cloud.runtime.layout import DataLayout
from cloud.runtime.training import train_fleet_model
from simulator.fleet import AssetSpec

START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC).timestamp()


def test_reported_rows_are_the_rows_the_fleet_model_was_trained_on(tmp_path: Path) -> None:
    # GIVEN three identical pumps whose histories share every timestamp
    layout = DataLayout.at(tmp_path / "demo")
    specs = [AssetSpec(f"pump-0{i}", "pump", seed=7 + i) for i in range(1, 4)]

    # WHEN the fleet model is trained on one day at one reading a minute
    info = train_fleet_model(layout, specs, "fleet", START, 1.0, 60.0, seed=7)

    # THEN every pump's rows count, and the count reported is the count the model used
    model = layout.registry().load("fleet")
    assert info["rows"] == 3 * 1440
    assert model.info["input_rows"] == info["rows"]
    # warm-up rows and the few gross outliers aside, all of them were fitted (old: a third)
    assert model.info["training_rows"] == info["training_rows"] > 0.9 * info["rows"]


def test_only_an_anomaly_after_the_onset_detects_the_fault() -> None:
    from cloud.runtime.demo import Story

    story = Story(faulted_asset="pump-02", onset=1000.0)
    story.note_anomalies("pump-02", [400.0, 700.0], now=800.0)  # before the fault
    story.note_anomalies("pump-01", [1500.0], now=1600.0)  # another asset
    assert story.first_anomaly is None and story.detected is None and not story.complete
    story.note_anomalies("pump-02", [700.0, 1300.0, 1200.0], now=1700.0)  # re-read + real
    assert story.first_anomaly == 1200.0 and story.detected == 1700.0
    assert story.false_alarm_rows == {400.0, 700.0}
    assert story.before_onset(999.0) and not story.before_onset(1000.0)
