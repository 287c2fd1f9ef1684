"""Input drift against the training distribution: the population stability index (PSI).

Training keeps a small profile of each sensor's raw values (:func:`training_profile`):
decile edges and the share of training rows between them. Recent readings are counted in
the same bins and compared with :func:`psi`:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

Shares are floored at :data:`FLOOR` so an empty bin does not make the index infinite. The
usual reading, used for the retrain suggestion: below 0.1 no shift, 0.1 to 0.25 a moderate
one, above 0.25 a significant one. Edges come from the training quantiles, so a sensor
with few distinct values gets fewer bins rather than empty ones.

Equipment runs in operating modes (stopped at night, part and full load), and the model
learns each one. A week at full load is not drift from a training week that mixed all of
them, so the profile also keeps each mode's shares (``by_mode``), and when the recent
readings' modes are known the expected shares are the training modes mixed in the recent
proportions (:func:`expected_for`): a change of mode mix is not reported, a change within
a mode is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

BINS: Final = 10
FLOOR: Final = 1e-4
MODERATE: Final = 0.1
SIGNIFICANT: Final = 0.25


def training_profile(
    x: np.ndarray,
    sensors: Sequence[str],
    modes: np.ndarray | None = None,
    n_modes: int = 1,
) -> dict[str, dict[str, Any]]:
    """Per sensor: inner bin edges, the training share per bin (overall and, with *modes*,
    per operating mode over the same edges), mean, std and rows."""
    profile: dict[str, dict[str, Any]] = {}
    for i, sensor in enumerate(sensors):
        column = x[:, i]
        finite = np.isfinite(column)
        values = column[finite]
        if not len(values):
            continue
        quantiles = np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1])
        edges = np.unique(quantiles)
        entry: dict[str, Any] = {
            "edges": [float(e) for e in edges],
            "expected": _shares(edges, values),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "rows": len(values),
        }
        if modes is not None and n_modes > 1:
            entry["by_mode"] = [
                _shares(edges, column[finite & (modes == m)]) for m in range(n_modes)
            ]
        profile[sensor] = entry
    return profile


def _shares(edges: np.ndarray, values: np.ndarray) -> list[float]:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    total = max(len(values), 1)
    return [round(float(c) / total, 6) for c in counts]


def expected_for(entry: dict[str, Any], mode_weights: Sequence[float] | None) -> list[float]:
    """The training shares to compare with: mixed in the recent mode proportions when both
    are known, the overall ones otherwise."""
    by_mode = entry.get("by_mode")
    if mode_weights is None or not by_mode or len(by_mode) != len(mode_weights):
        return list(entry["expected"])
    mixed = np.zeros(len(entry["expected"]))
    for weight, shares in zip(mode_weights, by_mode, strict=True):
        mixed += weight * np.asarray(shares)
    total = mixed.sum()
    return list(mixed / total) if total > 0 else list(entry["expected"])


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """The population stability index of two distributions over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=float), FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def sensor_drift(
    entry: dict[str, Any], values: np.ndarray, mode_weights: Sequence[float] | None = None
) -> dict[str, Any]:
    """PSI of *values* against one sensor's training profile, with the level it reads as."""
    values = values[np.isfinite(values)]
    edges = np.asarray(entry["edges"], dtype=float)
    if not len(values):
        return {"psi": None, "level": "no data", "rows": 0, "mean": None}
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    index = psi(expected_for(entry, mode_weights), counts / len(values))
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
