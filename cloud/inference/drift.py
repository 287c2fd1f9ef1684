"""Input drift against the training distribution: the population stability index (PSI).

Training keeps a small profile of each sensor's raw values (:func:`training_profile`):
decile edges and the share of training rows between them. Recent readings are counted in
the same bins and compared with :func:`psi`:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

Shares are floored at :data:`FLOOR` so an empty bin does not make the index infinite. The
usual reading, used for the retrain suggestion: below 0.1 no shift, 0.1 to 0.25 a moderate
one, above 0.25 a significant one. Edges come from the training quantiles, so a sensor
with few distinct values gets fewer bins rather than empty ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

BINS: Final = 10
FLOOR: Final = 1e-4
MODERATE: Final = 0.1
SIGNIFICANT: Final = 0.25


def training_profile(x: np.ndarray, sensors: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per sensor: inner bin edges, the training share per bin, mean, std and rows."""
    profile: dict[str, dict[str, Any]] = {}
    for i, sensor in enumerate(sensors):
        values = x[:, i]
        values = values[np.isfinite(values)]
        if not len(values):
            continue
        quantiles = np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1])
        edges = np.unique(quantiles)
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        profile[sensor] = {
            "edges": [float(e) for e in edges],
            "expected": [round(float(c) / len(values), 6) for c in counts],
            "mean": float(values.mean()),
            "std": float(values.std()),
            "rows": len(values),
        }
    return profile


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """The population stability index of two distributions over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=float), FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def sensor_drift(entry: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    """PSI of *values* against one sensor's training profile, with the level it reads as."""
    values = values[np.isfinite(values)]
    edges = np.asarray(entry["edges"], dtype=float)
    if not len(values):
        return {"psi": None, "level": "no data", "rows": 0, "mean": None}
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    index = psi(entry["expected"], counts / len(values))
    return {
        "psi": round(index, 4),
        "level": level(index),
        "rows": len(values),
        "mean": float(values.mean()),
    }


def level(index: float) -> str:
    if index >= SIGNIFICANT:
        return "significant"
    if index >= MODERATE:
        return "moderate"
    return "none"
