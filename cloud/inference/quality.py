"""Data-quality report (§1.6): ``ListSensorStatistics`` per sensor, ``DataQualitySummary``
for the dataset, and the console grade (High / Medium / Low, per the spec's Choice).

Rules plantwatch applies where AWS gives no number:
* flat sensor -> ``MonotonicValues`` ``STATIC``; >= 95 % of steps one way and a net change
  of more than the sensor's noise -> ``INCREASING``/``DECREASING`` (drift);
* ``CategoricalValues``: at most 10 distinct values over at least 100 readings;
* ``LargeTimestampGaps``: a gap longer than 100 median steps (and at least one hour);
* ``MultipleOperatingModes``: the values split into two clusters at least 4 within-cluster
  standard deviations apart, each with 5 % of the readings or more;
* too few values: fewer than 14 days of data (``SensorsWithShortDateRange``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cloud.inference.dataset import Dataset, missing_values

ISSUE, OK = "POTENTIAL_ISSUE_DETECTED", "NO_ISSUE_DETECTED"
SHORT_RANGE = pd.Timedelta(days=14)


def _count(count: int, total: int) -> dict[str, float | int]:
    return {"Count": int(count), "Percentage": round(100.0 * count / total, 2) if total else 0.0}


def _monotonic(values: np.ndarray) -> str | None:
    if len(values) < 2:
        return None
    if np.all(values == values[0]):
        return "STATIC"
    steps = np.diff(values)
    moving = steps[steps != 0]
    if len(moving) < 10:
        return None
    noise = np.std(steps) if len(steps) > 1 else 0.0
    net = values[-1] - values[0]
    if (moving > 0).mean() >= 0.95 and net > noise:
        return "INCREASING"
    if (moving < 0).mean() >= 0.95 and -net > noise:
        return "DECREASING"
    return None


def _two_modes(ordered: np.ndarray) -> bool:
    """Two-means split of the sorted values: each side is a slice, not a copy."""
    if len(ordered) < 50 or np.std(ordered) == 0:
        return False
    low, high = np.percentile(ordered, [10, 90])
    for _ in range(20):
        split = (low + high) / 2
        cut = int(np.searchsorted(ordered, split, side="right"))
        a, b = ordered[:cut], ordered[cut:]
        if not len(a) or not len(b):
            return False
        low, high = a.mean(), b.mean()
    share = min(len(a), len(b)) / len(ordered)
    spread = np.sqrt((a.var() * len(a) + b.var() * len(b)) / len(ordered))
    return share >= 0.05 and (high - low) > 4 * max(spread, 1e-12)


def sensor_statistics(dataset: Dataset) -> list[dict[str, Any]]:
    """One ``SensorStatisticsSummary``-shaped dict per sensor, plus ``Grade``."""
    out = []
    for component, sensors in dataset.components.items():
        parsed = dataset.parsed[component]
        frame = parsed.frame
        total = len(frame) + parsed.unsupported_timestamps
        steps = frame.index.to_series().diff().dropna()
        median_step = steps.median() if len(steps) else pd.Timedelta(0)
        limit = max(100 * median_step, pd.Timedelta(hours=1))
        gaps = steps[steps > limit]
        for sensor in sensors:
            column = frame[sensor]
            values = column.dropna().to_numpy(dtype=float)
            invalid = parsed.invalid_values.get(sensor, 0)
            missing = missing_values(parsed, sensor)
            exists = len(values) > 0
            present = column.dropna()
            start = present.index[0] if exists else None
            end = present.index[-1] if exists else None
            monotonic = _monotonic(values)
            ordered = np.sort(values)
            distinct = int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1 if exists else 0
            categorical = exists and len(values) >= 100 and distinct <= 10
            stats: dict[str, Any] = {
                "ComponentName": component,
                "SensorName": sensor,
                "Name": f"{component}\\{sensor}",
                "DataExists": exists,
                "MissingValues": _count(missing, total),
                "InvalidValues": _count(invalid, total),
                "InvalidDateEntries": _count(parsed.unsupported_timestamps, total),
                "DuplicateTimestamps": _count(parsed.duplicate_timestamps, total),
                "CategoricalValues": {
                    "Status": ISSUE if categorical else OK,
                    "NumberOfCategory": distinct if categorical else 0,
                },
                "MultipleOperatingModes": {
                    "Status": ISSUE if exists and _two_modes(ordered) else OK
                },
                "LargeTimestampGaps": {
                    "Status": ISSUE if len(gaps) else OK,
                    "NumberOfLargeTimestampGaps": len(gaps),
                    "MaxTimestampGapInDays": round(gaps.max() / pd.Timedelta(days=1), 2)
                    if len(gaps)
                    else 0,
                },
                "MonotonicValues": {"Status": ISSUE if monotonic else OK}
                | ({"Monotonicity": monotonic} if monotonic else {}),
                "DataStartTime": start.isoformat() if start is not None else None,
                "DataEndTime": end.isoformat() if end is not None else None,
            }
            short = not exists or (end - start) < SHORT_RANGE
            stats["ShortDateRange"] = short
            stats["Grade"] = _grade(stats, short, total)
            out.append(stats)
    return out


def _grade(stats: dict[str, Any], short: bool, total: int) -> str:
    """The spec's Choice: Low for no data, under 14 days or more than half missing or
    invalid (of the *total* rows read, counted: the two-decimal Percentage shows 50.004 %
    as 50.0); Medium for any other ``POTENTIAL_ISSUE_DETECTED`` status; High otherwise. The
    counts (missing, invalid, duplicate, bad dates) carry no Status in L4E, so below the
    Low share they leave a sensor High, as a few gaps in a year of data should."""
    bad = stats["MissingValues"]["Count"] + stats["InvalidValues"]["Count"]
    if not stats["DataExists"] or short or 2 * bad > total:
        return "Low"
    statuses = [
        stats[key]["Status"]
        for key in (
            "CategoricalValues",
            "MultipleOperatingModes",
            "LargeTimestampGaps",
            "MonotonicValues",
        )
    ]
    return "Medium" if ISSUE in statuses else "High"


def quality_report(dataset: Dataset) -> dict[str, Any]:
    """``DataQualitySummary`` + ``IngestedFilesSummary`` + per-sensor statistics."""
    sensors = sensor_statistics(dataset)
    return {
        "DataQualitySummary": {
            "InsufficientSensorData": {
                "MissingCompleteSensorData": {
                    "AffectedSensorCount": sum(not s["DataExists"] for s in sensors)
                },
                "SensorsWithShortDateRange": {
                    "AffectedSensorCount": sum(s["ShortDateRange"] for s in sensors)
                },
            },
            "MissingSensorData": {
                "AffectedSensorCount": sum(s["MissingValues"]["Count"] > 0 for s in sensors),
                "TotalNumberOfMissingValues": sum(s["MissingValues"]["Count"] for s in sensors),
            },
            "InvalidSensorData": {
                "AffectedSensorCount": sum(s["InvalidValues"]["Count"] > 0 for s in sensors),
                "TotalNumberOfInvalidValues": sum(s["InvalidValues"]["Count"] for s in sensors),
            },
            "UnsupportedTimestamps": {
                "TotalNumberOfUnsupportedTimestamps": sum(
                    p.unsupported_timestamps for p in dataset.parsed.values()
                )
            },
            "DuplicateTimestamps": {
                "TotalNumberOfDuplicateTimestamps": sum(
                    p.duplicate_timestamps for p in dataset.parsed.values()
                )
            },
        },
        "IngestedFilesSummary": {
            "TotalNumberOfFiles": sum(len(f) for f in dataset.files.values())
            + len(dataset.discarded),
            "IngestedNumberOfFiles": sum(len(f) for f in dataset.files.values()),
            "DiscardedFiles": [{"Key": key} for key in dataset.discarded],
        },
        "Grades": {s["Name"]: s["Grade"] for s in sensors},
        "SensorStatistics": sensors,
    }
