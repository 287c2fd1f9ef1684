"""Replay a recorded dataset as a live stream: L4E-layout CSV folders or SKAB CSVs.

Accepted inputs:

* an L4E dataset: ``DIR/<component>/*.csv`` (or ``DIR/data/<component>/...`` as written by
  ``sim history``); one component is one asset, several files in a folder are merged;
* a folder of flat CSVs, e.g. SKAB's ``valve1/0.csv``: one file is one asset, named
  ``<folder>-<file>``; separators ``,`` or ``;`` are detected; SKAB's ``anomaly`` and
  ``changepoint`` label columns are not sensors and are left out;
* a single CSV file.

Timestamps are shifted so the first row of the dataset plays at the replay start, keeping
the recorded spacing (``original_time`` keeps them as recorded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from edge.errors import UserError
from edge.user_files import MAX_HEADER_BYTES, read_header_line
from edge.wire import Sample
from simulator.asset import Block
from simulator.fleet import to_samples

LABEL_COLUMNS = {"anomaly", "changepoint"}
MAX_HEADER_CHARS = MAX_HEADER_BYTES


def _sensor_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name.strip())[:200] or "sensor"


def _asset_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name.strip())[:128] or "asset"


def read_table(path: Path) -> pd.DataFrame:
    """One CSV: first column the timestamp (UTC unless zoned), numeric sensors after it."""
    if path.exists() and not path.is_file():  # a FIFO blocks in open, /dev/zero never ends
        raise UserError(f"{path}: not a regular file")
    try:
        header = read_header_line(path, str(path), limit=MAX_HEADER_CHARS).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    sep = ";" if header.count(";") > header.count(",") else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' EmptyDataError and ParserError
        reason = " ".join(str(exc).split())  # the C reader's message ends in a newline
        raise UserError(f"{path}: not a CSV table ({reason})") from None
    if frame.shape[1] < 2:
        raise UserError(f"{path}: expected a timestamp column and at least one sensor column")
    raw_ts = frame.iloc[:, 0]
    try:
        ts = pd.to_datetime(raw_ts, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        try:
            ts = pd.to_datetime(raw_ts, utc=True, format="mixed")
        except (ValueError, TypeError) as exc:
            raise UserError(
                f"{path}: column 1 ({frame.columns[0]}): bad timestamp: {exc}"
            ) from None
    cols = [c for c in frame.columns[1:] if c.strip().lower() not in LABEL_COLUMNS]
    values = frame[cols].apply(pd.to_numeric, errors="coerce")
    values.columns = [_sensor_name(c) for c in cols]
    values.index = pd.DatetimeIndex(ts, name="Timestamp")
    return values


def load_dataset(path: str | Path) -> dict[str, pd.DataFrame]:
    """Asset name -> frame (UTC DatetimeIndex, sorted, duplicate timestamps: last wins)."""
    root = Path(path)
    if not root.exists():
        raise UserError(f"{root}: no such file or directory")
    if root.is_dir() and (root / "data").is_dir():
        root = root / "data"
    out: dict[str, pd.DataFrame] = {}
    if root.is_file():
        out[_asset_name(root.stem)] = read_table(root)
    else:
        components = sorted(d for d in root.iterdir() if d.is_dir() and any(d.glob("*.csv")))
        if components:
            for folder in components:
                parts = [read_table(f) for f in sorted(folder.glob("*.csv"))]
                out[_asset_name(folder.name)] = (
                    pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
                )
        else:
            for f in sorted(root.glob("*.csv"), key=lambda p: (len(p.stem), p.stem)):
                out[_asset_name(f"{root.name}-{f.stem}")] = read_table(f)
    if not out:
        raise UserError(f"{root}: no CSV files (expected DIR/<component>/*.csv or DIR/*.csv)")
    for name, frame in out.items():
        frame = frame.groupby(level=0).last() if frame.index.has_duplicates else frame
        out[name] = frame.sort_index()
    return out


@dataclass
class _Track:
    t: np.ndarray
    values: np.ndarray
    sensors: tuple[str, ...]
    pos: int = 0


class Replay:
    """A :class:`~simulator.runner.Stepper` over recorded frames."""

    def __init__(
        self,
        frames: dict[str, pd.DataFrame],
        *,
        start: float,
        original_time: bool = False,
        align: bool = False,
    ) -> None:
        """*align* starts every asset at *start* (recordings from different days play
        side by side) instead of keeping their offsets from the earliest recording."""
        frames = {name: frame for name, frame in frames.items() if len(frame)}
        if not frames:
            raise UserError("replay: the dataset has no rows")
        first = min(f.index[0].timestamp() for f in frames.values())
        self._tracks = {}
        for name, frame in frames.items():
            own_first = frame.index[0].timestamp()
            shift = 0.0 if original_time else start - (own_first if align else first)
            t = frame.index.as_unit("ms").asi8 / 1000.0 + shift
            self._tracks[name] = _Track(t, frame.to_numpy(dtype=float), tuple(frame.columns))
        self.start = min(float(tr.t[0]) for tr in self._tracks.values())
        self.end = max(float(tr.t[-1]) for tr in self._tracks.values())
        self.rows = sum(len(tr.t) for tr in self._tracks.values())

    @property
    def assets(self) -> tuple[str, ...]:
        return tuple(self._tracks)

    def step(self, until: float) -> dict[str, list[Sample]]:
        out: dict[str, list[Sample]] = {}
        for name, tr in self._tracks.items():
            stop = int(np.searchsorted(tr.t, until, side="right"))
            if stop > tr.pos:
                block = Block(tr.t[tr.pos : stop], tr.values[tr.pos : stop], np.empty(0))
                samples = [s for s in to_samples(block, tr.sensors) if _any_value(s)]
                if samples:
                    out[name] = samples
                tr.pos = stop
        return out


def _any_value(sample: Sample) -> bool:
    return any(v is not None for v in sample.values.values())
