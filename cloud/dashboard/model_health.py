"""Model health (monitoring in production): per asset, how often the model flags rows, and
how far each sensor's recent readings have drifted from what the model was trained on.

Read from a data directory: the asset's results for the anomaly rate per day, its input
CSVs of the last ``window_s`` seconds (of data time, ending at its newest input) for drift,
and the model's training profile (``model.json`` ``info.profile``, written at training
time by :func:`cloud.inference.drift.training_profile`). Retraining is suggested when a
sensor's PSI reaches ``psi_threshold`` or the latest day's anomaly rate reaches
``rate_threshold``; both are reasons to look, not verdicts: a real fault also raises
the anomaly rate.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cloud.dashboard.analysis import anomaly_rate_per_day
from cloud.dashboard.queries import DataView, iso, parse_time
from cloud.inference import drift
from edge.errors import NotFoundError

MAX_FILES = 2000
"""Input files read per asset at most (a week of 5-minute windows)."""


@dataclass(frozen=True, slots=True)
class HealthOptions:
    model: str | None = None
    window_s: float = 86400.0
    psi_threshold: float = drift.SIGNIFICANT
    rate_threshold: float = 0.2


def model_health(view: DataView, options: HealthOptions | None = None) -> dict[str, Any]:
    """The whole fleet: one entry per asset, and the model it was judged against."""
    options = options or HealthOptions()
    name, info = _model_info(view, options.model)
    profile = info.get("profile") if info else None
    assets = [_asset(view, key, profile, options) for key in view.asset_keys()]
    return {
        "model": name,
        "model_version": info.get("version") if info else None,
        "profile": profile is not None,
        "psi_threshold": options.psi_threshold,
        "rate_threshold": options.rate_threshold,
        "window_s": options.window_s,
        "assets": assets,
        "retrain": [a["asset"] for a in assets if a["retrain"]],
    }


def asset_health(view: DataView, key: str, options: HealthOptions | None = None) -> dict:
    options = options or HealthOptions()
    view.require_asset(key)
    _name, info = _model_info(view, options.model)
    return _asset(view, key, info.get("profile") if info else None, options)


def _model_info(view: DataView, wanted: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """The named model, else the one the stack's scheduler ran, else the only one."""
    import json

    from cloud.inference.registry import ModelRegistry

    registry = ModelRegistry(view.layout.models)
    names = registry.names()
    name = wanted
    if name is None:
        scheduled = [doc.get("config", {}).get("model_name") for _k, doc in view.schedulers()]
        name = next((n for n in scheduled if n in names), None)
    if name is None and len(names) == 1:
        name = names[0]
    if name is None:
        if wanted is not None:
            raise NotFoundError(f"model {wanted!r}: not found under {registry.root}")
        return None, None
    if name not in names:
        raise NotFoundError(
            f"model {name!r}: not found under {registry.root} (known: {', '.join(names) or 'none'})"
        )
    meta = json.loads((registry.path(name) / "model.json").read_text())
    return name, dict(meta.get("info") or {})


def _asset(
    view: DataView, key: str, profile: dict[str, Any] | None, options: HealthOptions
) -> dict[str, Any]:
    site, asset = view.sites.split(key)
    rates = anomaly_rate_per_day(view.rows(key))
    latest_rate = rates[-1]["anomaly_rate"] if rates else None
    sensors, window = _drift(view, key, profile, options) if profile else ([], None)
    reasons = []
    if latest_rate is not None and latest_rate >= options.rate_threshold:
        reasons.append(
            f"anomaly rate {latest_rate:.0%} on {rates[-1]['day']} (threshold"
            f" {options.rate_threshold:.0%})"
        )
    for item in sensors:
        if item["psi"] is not None and item["psi"] >= options.psi_threshold:
            reasons.append(
                f"{item['sensor']} drifted: PSI {item['psi']:.2f} (threshold"
                f" {options.psi_threshold:g})"
            )
    psis = [s["psi"] for s in sensors if s["psi"] is not None]
    return {
        "key": key,
        "site": site,
        "asset": asset,
        "anomaly_rate_per_day": rates,
        "latest_anomaly_rate": latest_rate,
        "drift_window": window,
        "drift": sensors,
        "max_psi": max(psis) if psis else None,
        "retrain": bool(reasons),
        "reasons": reasons,
        "note": None if profile else "the model has no training profile; retrain it to record one",
    }


def _drift(
    view: DataView, key: str, profile: dict[str, Any], options: HealthOptions
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    files = view.input_files(key)
    if not files:
        return [], None
    end = files[-1][0]
    start = end - options.window_s
    recent = [path for t, path in files if t > start][-MAX_FILES:]
    columns = _read_columns(recent, start, end)
    out = []
    for sensor, entry in sorted(profile.items()):
        plain = sensor.rpartition("\\")[2]
        values = np.asarray(columns.get(plain, []), dtype=float)
        result = drift.sensor_drift(entry, values)
        out.append(
            {
                "sensor": plain,
                **result,
                "training_mean": round(entry["mean"], 6),
                "training_std": round(entry["std"], 6),
            }
        )
    out.sort(key=lambda s: -(s["psi"] or 0.0))
    return out, {"start": iso(start), "end": iso(end), "files": len(recent)}


def _read_columns(paths: list[Path], start: float, end: float) -> dict[str, list[float]]:
    columns: dict[str, list[float]] = {}
    for path in paths:
        try:
            reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8")))
            header = next(reader)
        except (OSError, StopIteration, UnicodeDecodeError):
            continue
        for record in reader:
            try:
                t = parse_time(record[0])
            except (ValueError, IndexError):
                continue
            if not start < t <= end:
                continue
            for name, cell in zip(header[1:], record[1:], strict=False):
                if cell:
                    try:
                        columns.setdefault(name, []).append(float(cell))
                    except ValueError:
                        continue
    return columns
