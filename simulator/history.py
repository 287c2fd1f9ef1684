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

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.asset import AssetGroup, AssetSpec
from simulator.labels import Label, write_labels
from simulator.physics import KINDS
from simulator.scenario import Scenario

CHUNK_ROWS = 8192
"""Rows per call, the same whatever the batch, so an asset's bytes never depend on which
other assets were generated with it."""
BATCH_ASSETS = 64
"""Assets computed together (and files open at once); with CHUNK_ROWS this bounds memory."""


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
    *,
    keep_frames: bool = True,
    on_rows: Callable[[int], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Rows every *rate_s* over ``[start, start + days)`` per asset, UTC DatetimeIndex.

    With *out_dir*, also writes the layout above. ``keep_frames=False`` returns ``{}`` and
    holds only one chunk in memory, so fleets of any size and length fit. *on_rows* is
    called with the rows (summed over assets) of each chunk as it is done, for progress.
    """
    t0 = (start if start.tzinfo else start.replace(tzinfo=UTC)).timestamp()
    rows = math.ceil(days * 86_400.0 / rate_s - 1e-9)
    faults = []
    if scenario is not None:
        scenario.check_assets(assets)
        faults = scenario.resolve(t0, days * 86_400.0)
    unit = (
        "ms"
        if any(np.any(_stamps_ms(t0, rate_s, c).astype(np.int64) % 1000) for c in _chunks(rows))
        else "s"
    )
    by_kind: dict[str, list[AssetSpec]] = {}
    for spec in assets:
        by_kind.setdefault(spec.kind, []).append(spec)
    kept: dict[str, list[np.ndarray]] = {spec.name: [] for spec in assets}
    for specs in by_kind.values():
        for b in range(0, len(specs), BATCH_ASSETS):
            batch = specs[b : b + BATCH_ASSETS]
            group = AssetGroup(batch, faults, rate_s=rate_s, seed=seed)
            writers: list[_ComponentWriter] = []
            try:
                if out_dir is not None:
                    for spec in batch:
                        writers.append(_ComponentWriter(Path(out_dir) / "data", spec))
                for chunk in _chunks(rows):
                    values = group.generate(t0 + np.arange(chunk.start, chunk.stop) * rate_s)[0]
                    stamps = np.datetime_as_string(
                        _stamps_ms(t0, rate_s, chunk), unit=unit
                    ).tolist()
                    for i, spec in enumerate(batch):
                        if writers:
                            writers[i].write(stamps, values[i])
                        if keep_frames:
                            kept[spec.name].append(values[i])
                    if on_rows is not None:
                        on_rows(len(chunk) * len(batch))
                for writer in writers:
                    writer.close()
            except BaseException:
                for writer in writers:
                    writer.abort()
                raise
    if out_dir is not None:
        end = t0 + (rows - 1) * rate_s
        write_labels(Path(out_dir) / "labels" / "labels.csv", history_labels(scenario, t0, end))
    if not keep_frames:
        return {}
    index = pd.DatetimeIndex(_stamps_ms(t0, rate_s, range(rows)), name="Timestamp")
    index = index.tz_localize("UTC")
    return {
        spec.name: pd.DataFrame(
            np.concatenate(kept[spec.name]) if kept[spec.name] else np.empty((0, 0)),
            index=index,
            columns=list(KINDS[spec.kind].sensor_names),
        )
        for spec in assets
    }


def _chunks(rows: int) -> Iterator[range]:
    return (range(lo, min(rows, lo + CHUNK_ROWS)) for lo in range(0, rows, CHUNK_ROWS))


def _stamps_ms(t0: float, rate_s: float, rows: range) -> np.ndarray:
    """Row times of *rows*, computed a chunk at a time so that a long history never holds
    all its timestamps at once."""
    return np.round((t0 + np.arange(rows.start, rows.stop) * rate_s) * 1000.0).astype(
        "datetime64[ms]"
    )


class _ComponentWriter:
    """``root/<asset>/<asset>.csv``: header, then ``yyyy-MM-ddTHH:mm:ss[.fff]`` rows.

    Written as ``<asset>.csv.partial`` and renamed when complete, so a failure (a full
    disk) leaves no CSV cut off mid-row for a dataset reader to take; an error names the
    CSV."""

    def __init__(self, root: Path, spec: AssetSpec) -> None:
        kind = KINDS[spec.kind]
        self._row = "%s," + ",".join(f"%.{s.decimals}f" for s in kind.sensors) + "\n"
        folder = root / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{spec.name}.csv"
        self._partial = folder / f"{spec.name}.csv.partial"
        self._fh = open(self._partial, "w", newline="")  # noqa: SIM115 - closed by close()/abort()
        self._guarded(lambda: self._fh.write("Timestamp," + ",".join(kind.sensor_names) + "\n"))

    def write(self, stamps: list[str], values: np.ndarray) -> None:
        row = self._row
        text = "".join(row % (ts, *r) for ts, r in zip(stamps, values.tolist(), strict=True))
        self._guarded(lambda: self._fh.write(text.replace("nan", "")))

    def close(self) -> None:
        self._guarded(self._fh.close)
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        self._partial.unlink(missing_ok=True)

    def _guarded(self, step: Callable[[], object]) -> None:
        try:
            step()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from exc
