"""Queued window files -> Parquet parts, idempotently, on a size or time bound.

The batcher queues each input file's rows in its spool, in the transaction that writes the
window (:mod:`cloud.batcher.spool`), so the archive's source of truth survives a SIGKILL
exactly as the spool does. A flush takes the oldest queued files, writes one part per
partition they touch, then moves the ``_committed`` mark past them and only then deletes
them from the queue (:mod:`cloud.archive.layout`). Killed at any point, the next writer
finds either the mark behind the parts (it deletes them and writes the flush again) or the
queue behind the mark (it forgets what the mark covers): every cell lands exactly once.

Cells are what the input files hold: one value per (site, asset, timestamp, sensor). A late
file (a window's second, third ... file) can repeat a cell an earlier file of the window
already holds; the scheduler keeps the earlier file's value (the later name timestamp wins,
``cloud.inference.scheduler``), so the archive keeps the first cell written and drops the
repeat. The one exception: when a window has used every late-file name and the last one is
extended in place, a cell that file already held and a newer message changes keeps its old
value in the archive.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cloud.archive import compaction
from cloud.archive.layout import (
    DAY_MS,
    WRITER_LOCK,
    Partition,
    create_private,
    date_of_day,
    part_name,
    partitions,
    parts,
    read_committed,
    write_committed,
)
from cloud.batcher.spool import QueuedWindow
from edge.clock import Clock
from edge.errors import ConfigError, StorageError
from edge.files import directory_lock, private_dir, private_file

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ArchivePolicy:
    """When queued cells become Parquet, and when small parts are merged."""

    flush_readings: int = 200_000
    """Flush once this many cells wait (the size bound)."""
    flush_age_s: float = 60.0
    """... or once the oldest waiting file has waited this long (the time bound)."""
    batch_readings: int = 1_000_000
    """At most about this many cells per flush (memory bound); a bigger backlog takes
    several flushes."""
    compact_parts: int = 48
    """Merge a partition's parts once it has more than this many."""
    durable: bool = False
    """fsync parts and marks: survives power loss, not only a killed process."""

    def __post_init__(self) -> None:
        if self.flush_readings < 1 or self.batch_readings < 1:
            raise ConfigError("archive flush_readings and batch_readings: must be at least 1")
        if self.flush_age_s < 0:
            raise ConfigError(f"archive flush_age_s {self.flush_age_s}: must be >= 0")
        if self.compact_parts < 1:
            raise ConfigError(f"archive compact_parts {self.compact_parts}: must be >= 1")


class ArchiveQueue(Protocol):
    """The batcher spool's archive queue (:class:`cloud.batcher.spool.Spool`)."""

    def archive_pending(self, max_readings: int) -> list[QueuedWindow]: ...

    def archive_backlog(self) -> tuple[int, int, float | None]: ...

    def archive_ack(self, last_id: int) -> None: ...

    def archive_floor(self, last_id: int) -> None: ...


@dataclass
class _Cells:
    """Long-form cells of one partition in one flush; sensors as codes into the flush's
    name table, so no Python string is touched per value."""

    ts: list[np.ndarray]
    sensor: list[np.ndarray]
    value: list[np.ndarray]

    def extend(self, ts: np.ndarray, sensor: np.ndarray, value: np.ndarray) -> None:
        self.ts.append(ts)
        self.sensor.append(sensor)
        self.value.append(value)


class ArchiveWriter:
    """One per archive directory; ``open`` recovers, ``flush`` writes, ``close`` drains.

    Thread-safe: ``start`` runs :meth:`step` on a thread of its own, so a flush never
    holds up the batcher or the scheduler.
    """

    def __init__(
        self,
        root: str | Path,
        queue: ArchiveQueue,
        clock: Clock,
        policy: ArchivePolicy | None = None,
    ) -> None:
        self.root = Path(root)
        self.queue = queue
        self.clock = clock
        self.policy = policy or ArchivePolicy()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._lock_file: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- life -----------------------------------------------------------------------

    def open(self) -> ArchiveWriter:
        """Take the writer lock and undo what a killed writer left half done."""
        import fcntl

        import pyarrow.compute
        import pyarrow.csv
        import pyarrow.dataset
        import pyarrow.parquet  # noqa: F401 - loaded now, not in the middle of the first flush

        private_dir(self.root)
        handle = open(private_file(self.root / WRITER_LOCK), "a+b")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ConfigError(
                f"{self.root}: another process is writing this archive (a running "
                "`plantwatch up` on the same --data?)"
            ) from None
        self._lock_file = handle
        try:
            self._recover()
        except BaseException:
            self._release()
            raise
        return self

    def _recover(self) -> None:
        committed = read_committed(self.root)
        with directory_lock(self.root, exclusive=True):
            for partition in list(partitions(self.root)):
                folder = partition.path(self.root)
                compaction.recover(folder, committed, every_temporary=True)
                for number, path in parts(folder):
                    if number > committed:  # an interrupted flush: written again below
                        path.unlink()
                        self.counts["stray_parts_removed"] += 1
        self.queue.archive_ack(committed)
        self.queue.archive_floor(committed)

    def start(self, interval_s: float = 1.0) -> None:
        """Flush and compact on a thread of its own until :meth:`close`."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(interval_s,), name="plantwatch-archive", daemon=True
        )
        self._thread.start()

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.step()
            except Exception as exc:  # the queue keeps everything; the next step retries
                self.counts["flush_errors"] += 1
                log.error("archive flush failed (will retry): %s", exc)

    def close(self) -> None:
        """Stop the thread, write everything queued, release the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            if self._lock_file is not None:
                self.flush(everything=True)
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor drops the flock
            self._lock_file = None

    # ---- work -----------------------------------------------------------------------

    def due(self) -> bool:
        """The size or the time bound is reached."""
        _files, readings, oldest = self.queue.archive_backlog()
        if readings >= self.policy.flush_readings:
            return True
        return oldest is not None and self.clock.now() - oldest >= self.policy.flush_age_s

    def step(self) -> int:
        """Flush if due; returns cells written."""
        return self.flush() if self.due() else 0

    def flush(self, *, everything: bool = False) -> int:
        """Write the oldest queued files (all of them with *everything*); returns cells
        written."""
        if self._lock_file is None:
            raise StorageError(f"{self.root}: archive writer is not open")
        total = 0
        with self._lock:
            while True:
                entries = self.queue.archive_pending(self.policy.batch_readings)
                if not entries:
                    break
                total += self._write(entries)
                if not everything:
                    break
        return total

    def _write(self, entries: list[QueuedWindow]) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        committed = read_committed(self.root)
        first, last = entries[0].id, entries[-1].id
        if first <= committed:  # the mark moved but the queue was not told: forget them
            self.queue.archive_ack(committed)
            entries = [e for e in entries if e.id > committed]
            if not entries:
                return 0
            first = entries[0].id
        cells: dict[Partition, _Cells] = {}
        names: dict[str, int] = {}
        written = 0

        def add(
            site: str, asset: str, ts: np.ndarray, sensor: np.ndarray, value: np.ndarray
        ) -> None:
            days = ts // DAY_MS
            for day in np.unique(days):
                mask = days == day
                key = Partition(site, asset, date_of_day(int(day)))
                cells.setdefault(key, _Cells([], [], [])).extend(
                    ts[mask], sensor[mask], value[mask]
                )

        # A window's first file never repeats a cell, so the first files of one asset with
        # one header are parsed as one CSV; late files follow, one by one, in queue order,
        # and are checked against everything before them.
        firsts: dict[tuple[str, str, bytes], list[bytes]] = {}
        for entry in entries:
            if not entry.late:
                body = bytes(entry.body)
                header = body[: body.find(b"\n") + 1]
                firsts.setdefault((entry.site, entry.asset, header), []).append(body)
        for (site, asset, header), bodies in firsts.items():
            joined = header + b"".join(body[len(header) :] for body in bodies)
            ts, sensor, value = _long_form(joined, names)
            add(site, asset, ts, sensor, value)
            written += len(ts)
        for entry in entries:
            if entry.late:
                self.counts["late_files"] += 1
                ts, sensor, value = _long_form(bytes(entry.body), names)
                ts, sensor, value = self._drop_repeats(
                    entry, ts, sensor, value, cells, committed, list(names)
                )
                add(entry.site, entry.asset, ts, sensor, value)
                written += len(ts)
        dictionary = pa.array(list(names), pa.string())
        for key, found in sorted(cells.items()):
            codes = pa.array(np.concatenate(found.sensor), pa.int32())
            # sensor by sensor, each in time order, as the files' columns come (compaction
            # sorts by sensor then time; either way a part's row groups keep ts statistics)
            table = pa.table(
                {
                    "ts": pa.array(np.concatenate(found.ts), pa.timestamp("ms")),
                    "sensor": pa.DictionaryArray.from_arrays(codes, dictionary).dictionary_decode(),
                    "value": pa.array(np.concatenate(found.value), pa.float64()),
                }
            )
            folder = key.path(self.root)
            private_dir(folder)
            target = folder / part_name(first)
            tmp = folder / f".{target.name}.tmp"
            with create_private(tmp) as fh:
                pq.write_table(table, fh)
                if self.policy.durable:
                    fh.flush()
                    _fsync(fh)
            tmp.replace(target)
            self.counts["parts_written"] += 1
        write_committed(self.root, last, durable=self.policy.durable)
        self.queue.archive_ack(last)
        self.counts["flushes"] += 1
        self.counts["readings_written"] += written
        for key in sorted(cells):
            folder = key.path(self.root)
            if len(parts(folder)) > self.policy.compact_parts:
                self.compact(key)
        return written

    def _drop_repeats(
        self,
        entry: QueuedWindow,
        ts: np.ndarray,
        sensor: np.ndarray,
        value: np.ndarray,
        pending: dict[Partition, _Cells],
        committed: int,
        names: list[str],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Leave out cells an earlier file of the window already put in the archive."""
        if not len(ts):
            return ts, sensor, value
        lo, hi = int(ts.min()), int(ts.max())
        seen: set[tuple[int, str]] = set()
        for day in range(lo // DAY_MS, hi // DAY_MS + 1):
            key = Partition(entry.site, entry.asset, date_of_day(day))
            # as a reader: `archive compact` in another process replaces parts only under
            # the exclusive lock, so the parts listed are the parts read
            with directory_lock(self.root, exclusive=False):
                unreadable: list[Path] = []
                seen.update(_archived_cells(key.path(self.root), committed, lo, hi, unreadable))
            for path in unreadable:
                self.counts["unreadable_parts"] += 1
                log.error("archive: %s is not readable Parquet; late repeats kept", path)
            found = pending.get(key)
            if found is not None:
                for t_arr, s_arr in zip(found.ts, found.sensor, strict=True):
                    inside = (t_arr >= lo) & (t_arr <= hi)
                    seen.update(
                        (t, names[c])
                        for t, c in zip(t_arr[inside].tolist(), s_arr[inside].tolist(), strict=True)
                    )
        if not seen:
            return ts, sensor, value
        keep = np.array(
            [(t, names[c]) not in seen for t, c in zip(ts.tolist(), sensor.tolist(), strict=True)],
            dtype=bool,
        )
        self.counts["late_repeats_dropped"] += int((~keep).sum())
        return ts[keep], sensor[keep], value[keep]

    def compact(self, partition: Partition | None = None, *, wait: bool = False) -> int:
        """Merge small parts (of one partition, or of every one); returns partitions
        merged. Skipped, not waited for, while a reader holds the archive (unless *wait*)."""
        committed = read_committed(self.root)
        targets = [partition] if partition is not None else list(partitions(self.root))
        merged = 0
        with directory_lock(self.root, exclusive=True, wait=wait) as locked:
            if not locked:
                self.counts["compactions_deferred"] += 1
                return 0
            for key in targets:
                try:
                    done = compaction.compact(
                        key.path(self.root), committed, durable=self.policy.durable
                    )
                except compaction.UnreadablePart as exc:  # the flush stands; the part stays
                    self.counts["compactions_failed"] += 1
                    log.error("archive compaction skipped: %s", exc)
                    continue
                merged += done
        self.counts["compactions"] += merged
        return merged

    @property
    def stats(self) -> dict[str, Any]:
        files, readings, oldest = self.queue.archive_backlog()
        return {
            "readings_written": self.counts["readings_written"],
            "parts_written": self.counts["parts_written"],
            "flushes": self.counts["flushes"],
            "compactions": self.counts["compactions"],
            "late_repeats_dropped": self.counts["late_repeats_dropped"],
            "flush_errors": self.counts["flush_errors"],
            "queued_files": files,
            "queued_readings": readings,
            "oldest_queued_s": None if oldest is None else round(self.clock.now() - oldest, 3),
        }


def _long_form(body: bytes, names: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ts_ms, sensor code, value)`` of an input file's non-empty cells; new sensor
    names get the next code in *names*."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pcsv

    header = body[: body.find(b"\n")].decode("ascii").split(",")
    # columns by position, not by name: a sensor may be called "Timestamp" or repeat a name
    positions = [f"c{i}" for i in range(len(header))]
    types = {column: pa.float64() for column in positions[1:]}
    types["c0"] = pa.timestamp("us")  # written with microseconds, always whole ms
    table = pcsv.read_csv(
        io.BytesIO(body),
        read_options=pcsv.ReadOptions(
            use_threads=False, block_size=1 << 24, column_names=positions, skip_rows=1
        ),
        convert_options=pcsv.ConvertOptions(column_types=types),
    )
    ts = _numpy(table.column(0).cast(pa.int64())) // 1000
    out_ts, out_sensor, out_value = [], [], []
    for column, name in zip(positions[1:], header[1:], strict=True):
        # an empty cell becomes NaN; a stored value is never NaN (the wire contract refuses it)
        values = _numpy(table.column(column))
        present = ~np.isnan(values)
        count = int(present.sum())
        if count:
            out_ts.append(ts[present])
            out_value.append(values[present])
            out_sensor.append(np.full(count, names.setdefault(name, len(names)), np.int32))
    if not out_ts:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.float64)
    return np.concatenate(out_ts), np.concatenate(out_sensor), np.concatenate(out_value)


def _numpy(column: Any) -> np.ndarray:
    """One column as numpy, nulls as NaN (through one Array: ChunkedArray.to_numpy would
    import pandas)."""
    return column.combine_chunks().to_numpy(zero_copy_only=False)


def _archived_cells(
    folder: Path, committed: int, lo: int, hi: int, unreadable: list[Path]
) -> set[tuple[int, str]]:
    """``(ts_ms, sensor)`` the committed parts of one partition hold in ``[lo, hi]``. A
    part that cannot be read is added to *unreadable* and left out: its cells are lost to
    queries anyway, and a flush that waited for it would wait forever."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    low = pa.scalar(lo, pa.timestamp("ms"))
    high = pa.scalar(hi, pa.timestamp("ms"))
    seen: set[tuple[int, str]] = set()
    for _n, path in parts(folder, committed):
        try:
            table = ds.dataset(str(path), format="parquet").to_table(
                columns=["ts", "sensor"], filter=(pc.field("ts") >= low) & (pc.field("ts") <= high)
            )
        except pa.ArrowInvalid:
            unreadable.append(path)
            continue
        stamps = table.column("ts").cast(pa.int64()).to_pylist()
        seen.update(zip(stamps, table.column("sensor").to_pylist(), strict=True))
    return seen


def _fsync(fh: Any) -> None:
    import os

    os.fsync(fh.fileno())
