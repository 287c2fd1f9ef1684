"""The demo's fleet model trains on every pump's history, and says so truthfully."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cloud.inference.registry import ModelRegistry
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
    model = ModelRegistry(layout.models).load("fleet")
    assert info["rows"] == 3 * 1440
    assert model.info["input_rows"] == info["rows"]
    # warm-up rows and the few gross outliers aside, all of them were fitted (old: a third)
    assert model.info["training_rows"] == info["training_rows"] > 0.9 * info["rows"]

