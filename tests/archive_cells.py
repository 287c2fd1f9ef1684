"""Cells (site, asset, ts_ms, sensor) -> value, read two ways, for archive tests.

``input_cells`` reads the L4E input files as the scheduler does (``cloud.inference.
scheduler.read_window``): every file of a component, the later name timestamp winning a
cell both hold, empty cells absent. ``archive_cells`` asks the ``readings`` view.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from cloud.adapters.local import FsObjectStore
from cloud.archive.query import Catalog, Sources
from cloud.l4e.naming import InputNaming

Cells = dict[tuple[str, str, int, str], float]


def input_cells(bucket: Path, default_site: str = "s1") -> Cells:
    store = FsObjectStore(bucket, fsync=False)
    naming = InputNaming()
    files: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for key in store.list("input/"):
        rest = key[len("input/") :]
        site, _, name = rest.rpartition("/")
        parsed = naming.parse(name)
        assert parsed is not None, key
        files.setdefault((site or default_site, parsed[0]), []).append((parsed[1], key))
    cells: Cells = {}
    for (site, asset), found in files.items():
        for _stamp, key in sorted(found):  # later names overwrite, as combine_first keeps them
            reader = csv.reader(io.StringIO(store.get(key).decode()))
            header = next(reader)
            for row in reader:
                at = datetime.strptime(row[0], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
                ts_ms = round(at.timestamp() * 1000)
                for sensor, text in zip(header[1:], row[1:], strict=True):
                    if text:
                        cells[(site, asset, ts_ms, sensor)] = float(text)
    return cells


def archive_cells(archive: Path) -> Cells:
    with Catalog(Sources(archive=archive)) as catalog:
        answer = catalog.query(
            "SELECT site, asset, epoch_ms(ts), sensor, value, count(*) OVER "
            "(PARTITION BY site, asset, ts, sensor) FROM readings"
        )
    assert all(row[5] == 1 for row in answer.rows), "a cell is in the archive twice"
    return {(s, a, int(t), n): v for s, a, t, n, v, _ in answer.rows}
