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
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cloud.archive.layout import JOURNAL_FILE, create_private, parts, read_journal
from edge.errors import StorageError
from edge.files import write_private


def compact(folder: Path, committed: int, *, durable: bool = False, min_parts: int = 2) -> bool:
    """Merge *folder*'s complete parts when there are at least *min_parts*; True if merged.
    Raises :class:`UnreadablePart`, having changed nothing, when one cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    recover(folder)
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


def recover(folder: Path, *, every_temporary: bool = False) -> None:
    """Finish an interrupted merge and drop its temporary file; with *every_temporary*
    (the writer, before it writes anything) also those of interrupted flushes."""
    journal = read_journal(folder)
    if journal is not None:
        _finish(folder, journal)
    for entry in os.scandir(folder):
        prefix = "." if every_temporary else ".compact-"
        if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
            os.unlink(entry.path)


def _finish(folder: Path, journal: dict[str, Any]) -> None:
    target = str(journal["target"])
    tmp = folder / f".compact-{target}.tmp"
    if tmp.exists():
        tmp.replace(folder / target)
    for name in journal["sources"]:
        if name != target:
            (folder / str(name)).unlink(missing_ok=True)
    (folder / JOURNAL_FILE).unlink()
