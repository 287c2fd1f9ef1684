"""Small synthetic plant data: two operating modes, correlated sensors, seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

SENSORS = ("pump\\motor_current", "pump\\flow", "pump\\pressure", "pump\\temperature")


def plant_frame(rows: int = 2000, seed: int = 1, start: str = "2026-01-01") -> pd.DataFrame:
    """Load drives all sensors; the plant switches between a low and a high operating mode."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=rows, freq="60s", tz="UTC")
    mode = (np.arange(rows) // 200) % 2
    load = np.where(mode == 1, 80.0, 40.0) + rng.normal(0, 2, rows)
    data = {
        SENSORS[0]: 0.2 * load + rng.normal(0, 0.3, rows),
        SENSORS[1]: 3.0 * load + rng.normal(0, 2.0, rows),
        SENSORS[2]: 0.05 * load + 1.0 + rng.normal(0, 0.05, rows),
        SENSORS[3]: 40 + 0.1 * load + rng.normal(0, 0.5, rows),
    }
    return pd.DataFrame(data, index=index)


@pytest.fixture
def frame() -> pd.DataFrame:
    return plant_frame()
