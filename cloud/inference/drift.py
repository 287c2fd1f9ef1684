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

A PSI is judged only where it can tell drift from chance:

* On few rows it is noise. For independent rows drawn from the training distribution it
  is about ``(1/rows + 1/training rows) * chi2(bins - 1)`` (Yurdakul, *Statistical
  Properties of the Population Stability Index*, 2018); :func:`sensor_drift` reports that
  bound's 99th percentile as ``noise``, and the level ``too few rows`` while it reaches the
  moderate line (about 220 rows for 10 bins; 30 rows from the training distribution itself read
  above 0.25 two times in three). Readings in a row are rarely independent, so this is a
  floor, not a guarantee.
* A large PSI also comes from a window that holds fewer of the states training saw: a
  couple of hours at one load against a week of loads fills 2 of 10 bins and reads 7 or
  more, and a single day of the training data itself reads 2 to 5 against its own week.
  Retraining on such data would not change that, and the model knows those readings. So a
  sensor is a reason to retrain (:func:`drifted`) only when, besides the PSI, at least
  :data:`OUTSIDE` of its recent readings are outside the range that held 99 % of the
  training rows (``range``), widened by :data:`MARGIN` of its width on each side (a week
  of training sets the range at its most extreme shift; the next week's shift a little
  beyond it is the same state); profiles saved before the range was kept are judged on the PSI
  alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

BINS: Final = 10
FLOOR: Final = 1e-4
MODERATE: Final = 0.1
SIGNIFICANT: Final = 0.25
RANGE: Final = (0.005, 0.995)
"""Training quantiles that bound the ``range``: the middle 99 % of the training rows."""
MARGIN: Final = 0.1
"""Share of the range's width it is widened by, each side, before readings count as outside
(healthy simulated weeks after a week of training, 24-hour windows: 5 to 27 of 39 flagged
on the bare range, 0 to 9 with this margin, those left the fluid temperature below the
training week's or a stop the training week did not have)."""
OUTSIDE: Final = 0.05
"""Share of recent readings outside the training range that makes a high PSI a shift out of
the trained states (rows from the training distribution: about 1 %)."""
_PROFILE_QUANTILES: Final = (RANGE[0], *np.linspace(0, 1, BINS + 1)[1:-1], RANGE[1])

CHI2_99: Final = (6.635, 9.210, 11.345, 13.277, 15.086, 16.812, 18.475, 20.090, 21.666)
"""99th percentile of chi-square with 1..9 degrees of freedom (bins - 1, for up to 10 bins)."""


def training_profile(
    x: np.ndarray,
    sensors: Sequence[str],
    modes: np.ndarray | None = None,
    n_modes: int = 1,
) -> dict[str, dict[str, Any]]:
    """Per sensor: inner bin edges, the training share per bin (overall and, with *modes*,
    per operating mode over the same edges), mean, std, rows and the range of the middle
    99 % of the values."""
    profile: dict[str, dict[str, Any]] = {}
    for i, sensor in enumerate(sensors):
        column = x[:, i]
        finite = np.isfinite(column)
        values = column[finite]
        if not len(values):
            continue
        # one selection pass for the bin edges and the range
        low, *quantiles, high = np.quantile(values, _PROFILE_QUANTILES)
        edges = np.unique(quantiles)
        entry: dict[str, Any] = {
            "edges": [float(e) for e in edges],
            "expected": _shares(edges, values),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "rows": len(values),
            "range": [float(low), float(high)],
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
    """PSI of *values* against one sensor's training profile, with the level it reads as,
    the PSI that chance alone stays under (``noise``) and the share of *values* outside the
    training range (``outside``; None for a profile without one)."""
    values = values[np.isfinite(values)]
    edges = np.asarray(entry["edges"], dtype=float)
    if not len(values):
        return {
            "psi": None,
            "level": "no data",
            "rows": 0,
            "mean": None,
            "noise": None,
            "outside": None,
        }
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    index = psi(expected_for(entry, mode_weights), counts / len(values))
    bound = noise(entry, len(values))
    outside = None
    if "range" in entry:
        lo, hi = entry["range"]
        lo, hi = lo - MARGIN * (hi - lo), hi + MARGIN * (hi - lo)
        outside = round(float(np.mean((values < lo) | (values > hi))), 4)
    return {
        "psi": round(index, 4),
        "level": "too few rows" if bound >= MODERATE else level(index),
        "rows": len(values),
        "mean": float(values.mean()),
        "noise": round(bound, 4),
        "outside": outside,
    }


def noise(entry: dict[str, Any], rows: int) -> float:
    """The PSI that *rows* independent readings from the training distribution stay under
    99 times in 100 (see the module docstring)."""
    bins = sum(1 for share in entry["expected"] if share > 0)  # a constant sensor: one
    if bins < 2:
        return 0.0
    if rows < 1:
        return float("inf")
    return CHI2_99[min(bins, BINS) - 2] * (1 / rows + 1 / max(int(entry.get("rows", 0)), 1))


def min_rows(entry: dict[str, Any]) -> int | None:
    """The fewest recent rows on which the sensor's PSI is judged (``noise`` below the
    moderate line); None when no number is enough (too few training rows)."""
    if noise(entry, 2**62) >= MODERATE:
        return None
    rows = 1
    while noise(entry, rows) >= MODERATE:
        rows *= 2
    low = rows // 2  # noise(low) >= MODERATE > noise(rows), or rows == 1
    while rows - low > 1:
        middle = (low + rows) // 2
        low, rows = (middle, rows) if noise(entry, middle) >= MODERATE else (low, middle)
    return rows


def drifted(result: dict[str, Any], threshold: float = SIGNIFICANT) -> bool:
    """Whether a :func:`sensor_drift` result is a reason to retrain: a PSI at *threshold* or
    more, on enough rows, with readings outside the training range (when it is known)."""
    if result.get("psi") is None or result["level"] in ("no data", "too few rows"):
        return False
    outside = result.get("outside")
    return result["psi"] >= threshold and (outside is None or outside >= OUTSIDE)


def level(index: float) -> str:
    if index >= SIGNIFICANT:
        return "significant"
    if index >= MODERATE:
        return "moderate"
    return "none"
