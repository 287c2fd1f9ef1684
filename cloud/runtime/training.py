"""Train the demo's fleet model on simulated, fault-free history."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from cloud.runtime.layout import DataLayout


def train_fleet_model(
    layout: DataLayout, specs: list, name: str, start: float, days: float, rate_s: float, seed: int
) -> dict[str, Any]:
    """Generate history before *start*, train one model shared by identical pumps, save it."""
    import pandas as pd

    from cloud.inference.model import TrainConfig, train
    from simulator.history import generate_history

    history_start = datetime.fromtimestamp(start - days * 86400, UTC)
    frames = generate_history(
        specs, history_start, days, rate_s, out_dir=layout.root / "history", seed=seed
    )
    stacked = pd.concat([_indexed(frame) for frame in frames.values()])
    began = time.perf_counter()
    model = train(stacked, TrainConfig())
    train_s = time.perf_counter() - began
    version = layout.registry().save(name, model)
    return {
        "name": name,
        "version": version,
        "rows": len(stacked),
        "sensors": len(model.sensors),
        "train_s": train_s,
    }


def _indexed(frame: Any) -> Any:
    import pandas as pd

    if "Timestamp" in frame.columns:
        frame = frame.set_index(pd.to_datetime(frame["Timestamp"], utc=True)).drop(
            columns="Timestamp"
        )
    return frame
