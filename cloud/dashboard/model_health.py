"""Model health (monitoring in production): per asset, how often the model flags rows, and
how far each sensor's recent readings have drifted from what the model was trained on.

Read from a data directory: the asset's results for the anomaly rate per day, its input
CSVs of the last ``window_s`` seconds (of data time, ending at its newest input) for drift,
and the model's training profile (``model.json`` ``info.profile``, written at training
time by :func:`cloud.inference.drift.training_profile`). Retraining is suggested when a
sensor has drifted (:func:`cloud.inference.drift.drifted`: a PSI of ``psi_threshold`` or
more on enough rows, with readings outside the training range) or the latest day's anomaly
rate reaches ``rate_threshold``; both are reasons to look, not verdicts: a real fault also
raises the anomaly rate. A high PSI that is not a reason (too few rows, or readings within
the training range) is said in the asset's ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cloud.dashboard.analysis import anomaly_rate_per_day
from cloud.dashboard.queries import DataView, iso
from cloud.inference import drift
from cloud.inference.dataset import read_csv
from cloud.inference.model import resample
from cloud.l4e.naming import plain_sensor
from edge.errors import NotFoundError, UserError

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
    model = _load(view, name, info)
    assets = [_asset(view, key, profile, options, model) for key in view.asset_keys()]
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
    name, info = _model_info(view, options.model)
    return _asset(
        view, key, info.get("profile") if info else None, options, _load(view, name, info)
    )


def _load(view: DataView, name: str | None, info: dict[str, Any] | None) -> Any:
    """The model itself, to prepare the recent readings as training did (its sampling rate,
    machine-off rows left out) and tell their operating modes; None if unreadable."""
    if name is None or not info or not info.get("profile"):
        return None
    try:
        return view.layout.registry().load(name)
    except (UserError, NotFoundError):
        return None


def _model_info(view: DataView, wanted: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """The named model, else the one the stack's scheduler ran, else the only one."""

    registry = view.layout.registry()
    names = registry.names()
    name = wanted
    if name is None:
        scheduled = [doc.get("config", {}).get("model_name") for _k, doc in view.schedulers()]
        name = next((n for n in scheduled if n in names), None)
    if name is None and len(names) == 1:
        name = names[0]
    if name is None:
        if wanted is not None:
            raise NotFoundError(f"model {wanted!r}: not found under {registry.where}")
        return None, None
    if name not in names:
        raise NotFoundError(
            f"model {name!r}: not found under {registry.where} (known: {', '.join(names) or 'none'})"
        )
    meta = registry.report(name, "model")  # a damaged file is a UserError naming it
    if meta is None:
        raise NotFoundError(f"{registry.location(name)}/model.json: no such object")
    return name, dict(meta.get("info") or {})


def _asset(
    view: DataView,
    key: str,
    profile: dict[str, Any] | None,
    options: HealthOptions,
    model: Any = None,
) -> dict[str, Any]:
    site, asset = view.sites.split(key)
    rates = anomaly_rate_per_day(view.rows(key))
    latest_rate = rates[-1]["anomaly_rate"] if rates else None
    unreadable: list[dict[str, str]] = []
    sensors, window = (
        _drift(view, key, profile, options, model, unreadable) if profile else ([], None)
    )
    reasons = []
    if latest_rate is not None and latest_rate >= options.rate_threshold:
        reasons.append(
            f"anomaly rate {latest_rate:.0%} on {rates[-1]['day']} (threshold"
            f" {options.rate_threshold:.0%})"
        )
    drifted = [s for s in sensors if drift.drifted(s, options.psi_threshold)]
    for item in drifted:
        outside = (
            "" if item["outside"] is None else f", {item['outside']:.0%} outside the training range"
        )
        reasons.append(
            f"{item['sensor']} drifted: PSI {item['psi']:.2f}{outside} (threshold"
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
        "drifted": [s["sensor"] for s in drifted],
        "retrain": bool(reasons),
        "reasons": reasons,
        "unreadable": unreadable,
        "note": _note(sensors, options.psi_threshold)
        if profile
        else "the model has no training profile; retrain it to record one",
    }


def _note(sensors: list[dict[str, Any]], threshold: float) -> str | None:
    """Why a high PSI is not a reason to retrain: too few rows to tell it from chance, or
    readings that stay within the training range (a narrower mix of the trained states)."""
    notes = []
    few = [s for s in sensors if s["level"] == "too few rows"]
    if few:
        notes.append(
            f"drift not judged on {len(few)} sensor{'s' if len(few) > 1 else ''}: too few rows"
            f" ({min(s['rows'] for s in few)}) to tell a PSI from chance"
        )
    within = [
        s
        for s in sensors
        if s["level"] != "too few rows"
        and s["psi"] is not None
        and s["psi"] >= threshold
        and not drift.drifted(s, threshold)
    ]
    if within:
        notes.append(
            f"PSI up to {max(s['psi'] for s in within):.2f} on {len(within)} sensor"
            f"{'s' if len(within) > 1 else ''}, but readings within the training range:"
            " a narrower mix of the states trained on, not new ones"
        )
    return "; ".join(notes) or None


def _drift(
    view: DataView,
    key: str,
    profile: dict[str, Any],
    options: HealthOptions,
    model: Any,
    unreadable: list[dict[str, str]],
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Each profiled sensor's drift over the window; the window's input files that could
    not be read are added to *unreadable*."""
    files = view.input_files(key)
    if not files:
        return [], None
    end = files[-1][0]
    start = end - options.window_s
    recent = [path for t, path in files if t > start][-MAX_FILES:]
    frame = _read_frame(view, recent, start, end, unreadable)
    weights = _mode_weights(model, frame)
    frame = _as_trained(model, frame)
    out = []
    for sensor, entry in sorted(profile.items()):
        plain = plain_sensor(sensor)
        column = frame[plain] if plain in frame.columns else pd.Series(dtype=float)
        result = drift.sensor_drift(entry, column.to_numpy(dtype=float), weights)
        out.append(
            {
                "sensor": plain,
                **result,
                "training_mean": round(entry["mean"], 6),
                "training_std": round(entry["std"], 6),
            }
        )
    out.sort(key=lambda s: -(s["psi"] or 0.0))
    window = {
        "start": iso(start),
        "end": iso(end),
        "files": len(recent),
        "modes": None if weights is None else [round(w, 4) for w in weights],
    }
    return out, window


def _read_frame(
    view: DataView,
    paths: list[Path],
    start: float,
    end: float,
    unreadable: list[dict[str, str]],
) -> pd.DataFrame:
    """The input CSVs' readings in ``(start, end]``, one row per timestamp; a file that
    cannot be read is left out and added to *unreadable*."""
    frames = []
    for path in paths:
        try:
            frames.append(read_csv(path, str(path)).frame)
        except (UserError, OSError) as exc:
            unreadable.append(view.unreadable(path, exc))
    if not frames:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
    frame = pd.concat(frames).sort_index()
    frame = frame[~frame.index.duplicated(keep="last")]
    lo = pd.Timestamp(start, unit="s", tz="UTC")
    hi = pd.Timestamp(end, unit="s", tz="UTC")
    return frame[(frame.index > lo) & (frame.index <= hi)]


def _as_trained(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """The readings as the training profile saw them: resampled to the model's sampling
    rate, machine-off rows left out (a stopped pump is not drift from a profile of running
    ones, nor raw readings from one-minute means). Unchanged when the model cannot read them."""
    if model is None or frame.empty:
        return frame
    try:
        frame = resample(frame, model.config.sampling_rate)
        if model.off is not None:
            frame = frame[~model.off.mask(frame)]
    except (UserError, KeyError, ValueError):
        return frame
    return frame


def _mode_weights(model: Any, frame: pd.DataFrame) -> list[float] | None:
    """How the recent readings split over the model's operating modes (machine-off rows
    left out); None when the model cannot read them."""
    if model is None or frame.empty:
        return None
    try:
        _index, x, off = model.prepare(frame)
        modes = model.modes(x)[~off]
    except (UserError, KeyError, ValueError):
        return None
    if not len(modes):
        return None
    counts = np.bincount(modes, minlength=len(model.centroids))
    return [float(c) / len(modes) for c in counts]
