"""Merge a partition's small parts into one, with a journal so a crash never doubles a cell.

Each flush adds one part per partition it touches (about one per upload window), so a day
of a busy asset gathers hundreds of small files; reads slow down with the file count, not
the cell count. Compaction merges the complete parts of a partition (numbered at or below
``_committed``) into the highest-numbered of them:

1. write the merged table to ``.compact-part-<n>.parquet.tmp``;
2. write the journal ``_compaction.json`` naming the target and every source;
3. rename the merged file over the target;
4. delete the other sources, then the journal.

:func:`recover` finishes a merge a crash interrupted after step 2 (and removes a temporary
file it interrupted before), so a cell is never in two parts for longer than a crash
lasts. The caller holds the archive's exclusive directory lock, so no reader sees the
sources and the merged part at once.

A journal that cannot be read (a damaged disk, a hand edit) is moved aside as
``_compaction.json.damaged-<UTC time>``, as the edge queue does with a damaged file, and
the partition is repaired from what the steps above guarantee. The journal is written only
once the merged file is whole, and that file is renamed before the journal is removed, so:

- a ``.compact-*.tmp`` beside the journal: the merge never replaced its target; every
  source stands as it was, and the temporary file is dropped;
- none: the merge replaced its target, which holds every cell of every source, and some
  sources may still be there. A complete part whose cells (time, sensor and value) are all
  in a higher-numbered complete part is such a source and is removed. That deletes no cell
  the partition does not keep (the test is on content), and counts none twice.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from cloud.archive.layout import (
    JOURNAL_FILE,
    DamagedJournal,
    create_private,
    parts,
    read_journal,
)
from edge.errors import StorageError
from edge.files import damaged_name, write_private

log = logging.getLogger(__name__)


def compact(folder: Path, committed: int, *, durable: bool = False, min_parts: int = 2) -> bool:
    """Merge *folder*'s complete parts when there are at least *min_parts*; True if merged.
    Raises :class:`UnreadablePart`, having changed nothing, when one cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    recover(folder, committed)
    found = parts(folder, committed)
    if len(found) < min_parts:
        return False
    tables = [_read(path) for _n, path in found]
    merged = pa.concat_tables(tables).sort_by([("sensor", "ascending"), ("ts", "ascending")])
    target = found[-1][1]
    tmp = folder / f".compact-{target.name}.tmp"
    with create_private(tmp) as fh:
        pq.write_table(merged, fh)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    journal = {"target": target.name, "sources": [path.name for _n, path in found]}
    write_private(folder / JOURNAL_FILE, json.dumps(journal).encode(), fsync=durable)
    _finish(folder, journal)
    return True


class UnreadablePart(StorageError):
    """A part compaction cannot read: its partition is left exactly as it is."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: unreadable archive part, left as it is: {problem}")
        self.path = path


def _read(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadablePart(path, str(exc).strip().splitlines()[0]) from exc


def recover(folder: Path, committed: int, *, every_temporary: bool = False) -> None:
    """Finish an interrupted merge and drop its temporary file; with *every_temporary*
    (the writer, before it writes anything) also those of interrupted flushes. Parts are
    complete at or below *committed* (``_committed``)."""
    try:
        journal = read_journal(folder)
    except DamagedJournal as exc:
        _set_aside(folder, committed, exc)
        journal = None
    if journal is not None:
        _finish(folder, journal)
    for entry in os.scandir(folder):
        prefix = "." if every_temporary else ".compact-"
        if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
            os.unlink(entry.path)


def _set_aside(folder: Path, committed: int, exc: DamagedJournal) -> None:
    """Move a damaged journal out of the way and leave the partition as if its merge had
    finished or never begun, whichever it had got to (see the module's notes)."""
    renamed = not any(
        entry.name.startswith(".compact-") and entry.name.endswith(".tmp")
        for entry in os.scandir(folder)
    )
    aside = damaged_name(exc.path)
    exc.path.rename(aside)
    if renamed:
        removed = _drop_merged_sources(folder, committed)
        outcome = (
            f"removed {', '.join(removed)}, whose cells the merged part holds"
            if removed
            else "no source of the merge was left beside the merged part"
        )
    else:
        outcome = "the merge had not replaced any part: its sources stand"
    log.error(
        "archive: %s: damaged compaction journal (%s); moved it to %s and repaired the "
        "partition (%s): each cell is counted once; check and delete the moved file",
        exc.path,
        exc.problem,
        aside,
        outcome,
    )


def _drop_merged_sources(folder: Path, committed: int) -> list[str]:
    """Remove each complete part whose cells are all in a higher-numbered complete part;
    the names removed. A part that cannot be read is neither removed nor compared with."""
    import numpy as np
    import pandas as pd

    found = parts(folder, committed)
    keys: dict[Path, pd.MultiIndex | None] = {}
    for _n, path in found:
        try:
            table = _read(path)
        except UnreadablePart as unreadable:
            log.error("archive: %s", unreadable)
            keys[path] = None
            continue
        ts = table.column("ts").cast("int64").to_numpy()
        sensor = table.column("sensor").to_numpy(zero_copy_only=False)
        value = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
        keys[path] = pd.MultiIndex.from_arrays([ts, sensor, value.view(np.int64)]).unique()
    removed = []
    for i, (_n, path) in enumerate(found[:-1]):
        mine = keys[path]
        if mine is None:
            continue
        for _m, other in found[i + 1 :]:
            theirs = keys[other]
            if theirs is not None and bool(mine.isin(theirs).all()):
                path.unlink()
                removed.append(path.name)
                break
    return removed


def _finish(folder: Path, journal: dict[str, Any]) -> None:
    target = str(journal["target"])
    tmp = folder / f".compact-{target}.tmp"
    if tmp.exists():
        tmp.replace(folder / target)
    for name in journal["sources"]:
        if name != target:
            (folder / str(name)).unlink(missing_ok=True)
    (folder / JOURNAL_FILE).unlink()
