"""Historical training data in the L4E dataset layout, with ground-truth label files.

Layout under ``out_dir``:

```
data/<asset>/<asset>.csv   Timestamp,<sensor>,...   (one component per asset; L4E §1.1)
labels/labels.csv          start,end,fault_code,equipment,notes   (no header; L4E §2)
```

``data/`` is the dataset's ingestion prefix and ``labels/`` its labels prefix, as the two
S3 prefixes of an L4E dataset. Rows are formatted with one ``%`` per row (measured faster
than numpy's and pandas' CSV writers); lost readings are empty cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.asset import AssetGroup, AssetSpec
from simulator.labels import Label, write_labels
from simulator.physics import KINDS
from simulator.scenario import Scenario

CHUNK_VALUES = 1 << 22
"""Values (assets x rows x sensors) generated per call: bounds memory for large fleets."""


def history_labels(scenario: Scenario | None, start: float, end: float) -> list[Label]:
    """Ground truth for a history ``[start, end]``: faults overlapping it, clipped to it."""
    if scenario is None:
        return []
    out = []
    for f in scenario.resolve(start, end - start):
        label_end = f.label_end
        stop = end if label_end is None else min(label_end, end)
        if f.start <= end and stop >= start:
            out.append(Label(max(f.start, start), stop, f.code, f.asset, f.notes))
    return out


def generate_history(
    assets: Sequence[AssetSpec],
    start: datetime,
    days: float,
    rate_s: float,
    out_dir: Path | None = None,
    scenario: Scenario | None = None,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Rows every *rate_s* over ``[start, start + days)`` per asset, UTC DatetimeIndex."""
    t0 = (start if start.tzinfo else start.replace(tzinfo=UTC)).timestamp()
    rows = math.ceil(days * 86_400.0 / rate_s - 1e-9)
    faults = []
    if scenario is not None:
        scenario.check_assets(assets)
        faults = scenario.resolve(t0, days * 86_400.0)
    ts_ms = np.round((t0 + np.arange(rows) * rate_s) * 1000.0).astype("datetime64[ms]")
    index = pd.DatetimeIndex(ts_ms, name="Timestamp").tz_localize("UTC")
    by_kind: dict[str, list[AssetSpec]] = {}
    for spec in assets:
        by_kind.setdefault(spec.kind, []).append(spec)
    frames: dict[str, pd.DataFrame] = {}
    for specs in by_kind.values():
        group = AssetGroup(specs, faults, rate_s=rate_s, seed=seed)
        values = np.empty((len(specs), rows, len(group.sensors)))
        chunk = max(1, CHUNK_VALUES // (len(specs) * len(group.sensors)))
        for lo in range(0, rows, chunk):
            hi = min(rows, lo + chunk)
            values[:, lo:hi] = group.generate(t0 + np.arange(lo, hi) * rate_s)[0]
        for i, spec in enumerate(specs):
            frames[spec.name] = pd.DataFrame(values[i], index=index, columns=list(group.sensors))
            if out_dir is not None:
                write_component(Path(out_dir) / "data", spec, ts_ms, values[i])
    frames = {spec.name: frames[spec.name] for spec in assets}
    if out_dir is not None:
        end = t0 + (rows - 1) * rate_s
        write_labels(Path(out_dir) / "labels" / "labels.csv", history_labels(scenario, t0, end))
    return frames


def write_component(root: Path, spec: AssetSpec, ts_ms: np.ndarray, values: np.ndarray) -> Path:
    """Write ``root/<asset>/<asset>.csv``: header, then ``yyyy-MM-ddTHH:mm:ss[.fff]`` rows."""
    kind = KINDS[spec.kind]
    unit = "ms" if np.any(ts_ms.astype(np.int64) % 1000) else "s"
    stamps = np.datetime_as_string(ts_ms, unit=unit).tolist()
    row_fmt = "%s," + ",".join(f"%.{s.decimals}f" for s in kind.sensors) + "\n"
    folder = root / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.name}.csv"
    with path.open("w", newline="") as fh:
        fh.write("Timestamp," + ",".join(kind.sensor_names) + "\n")
        step = 1 << 16
        for lo in range(0, len(stamps), step):
            block = values[lo : lo + step].tolist()
            text = "".join(
                row_fmt % (ts, *row) for ts, row in zip(stamps[lo : lo + step], block, strict=True)
            )
            fh.write(text.replace("nan", ""))
    return path
