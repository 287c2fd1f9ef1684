"""Accepted-but-unwritten readings and the de-duplication memory, in SQLite.

A message is acknowledged to the broker only after :meth:`Spool.add` (or the
:meth:`Spool.batch` holding it) has committed, so a process killed at any point loses
nothing it acknowledged: on restart the spool still holds
the rows of every window not yet written, which windows were written (so later readings go
to a late file), and which message ids were seen (so redeliveries stay duplicates).

WAL with ``synchronous=NORMAL`` survives a killed process; ``durable=True`` (FULL) also
survives power loss, at the cost of an fsync per message.

``shared=True`` lets several runner processes (an MQTT ``$share`` group) use one spool file:
nothing is cached in memory, de-duplication happens inside the write transaction, and a
window is written under SQLite's write lock, so two processes never write the same file
with different rows.

The spool also holds the archive's queue (:mod:`cloud.archive`): the rows of each written
window file, added by the batcher inside the same transaction that forgets the window's
chunks, so a window is either still pending or written *and* queued for the archive, never
one without the other.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from edge.errors import StorageError
from edge.files import private_file

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, asset TEXT NOT NULL,"
    " window_end INTEGER NOT NULL, msg_id TEXT NOT NULL, samples TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS chunks_window ON chunks (asset, window_end)",
    "CREATE TABLE IF NOT EXISTS seen (msg_key TEXT NOT NULL, digest TEXT NOT NULL,"
    " last_ts_ms INTEGER NOT NULL, PRIMARY KEY (msg_key, digest))",
    "CREATE TABLE IF NOT EXISTS flushed (asset TEXT NOT NULL, window_end INTEGER NOT NULL,"
    " late_files INTEGER NOT NULL, PRIMARY KEY (asset, window_end))",
    # AUTOINCREMENT: an id is never reused, so the archive's "committed up to id" mark stays
    # true after the queue is emptied.
    "CREATE TABLE IF NOT EXISTS archive_queue (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " site TEXT NOT NULL, asset TEXT NOT NULL, window_end INTEGER NOT NULL,"
    " late INTEGER NOT NULL, queued_at REAL NOT NULL, readings INTEGER NOT NULL,"
    " body BLOB NOT NULL)",
)

BUSY_S = 30.0
"""How long opening or writing the spool waits for another connection (shared spools)."""
PAGE_SIZE = 16384
"""A message's chunk is a CSV fragment of a few kB: at SQLite's default 4 kB page each one
fills a page of its own, and every page costs two writes to the WAL (frame header, page)
plus a read and a write at the checkpoint. Several chunks share a 16 kB page."""

_ARCHIVE_INSERT = (
    "INSERT INTO archive_queue (site, asset, window_end, late, queued_at, readings, body)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)

CACHE_KIB = 32768
"""The pump reads back the chunks the worker wrote a moment ago; at SQLite's default 2 MB
cache they had already been evicted and were read again from the WAL (``pread`` per page)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """The samples of one message that fall into one window, as ``[(ts_ms, values), ...]``
    or as ``body``, the text the spool keeps for them."""

    asset: str
    window_end: int
    msg_id: str
    samples: list[tuple[int, dict[str, float | None]]]
    id: str = ""
    """The spool's handle for it, set when read back; deleting by id, not by window, keeps
    a chunk accepted while its window is being written."""
    body: str = ""
    """The samples as the batcher wrote them down: a CSV fragment
    (:mod:`cloud.batcher.csv_text`), or, in a spool an earlier version wrote, their JSON.
    The spool stores and returns it as it is."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted message for :meth:`SpoolPort.add_many`."""

    msg_key: str
    digest: str
    last_ts_ms: int
    chunks: list[Chunk]


@dataclass(frozen=True, slots=True)
class WindowJob:
    """A pending window handed to a :data:`WindowsWriter`: its chunks and its late-file
    count (None: never written)."""

    asset: str
    window_end: int
    chunks: list[Chunk]
    late_files: int | None


@dataclass(frozen=True, slots=True)
class QueuedWindow:
    """One written window file, waiting for the archive; ``body`` is the file itself (the
    CSV bytes), so the archive reads exactly what the scheduler reads."""

    id: int
    site: str
    asset: str
    window_end: int
    late: int
    """0 for the window's first file, k for its k-th late file."""
    queued_at: float
    readings: int
    """About how many values the file holds (the size bound counts these)."""
    body: bytes


WindowWriter = Callable[[list[Chunk], int | None], tuple[str | None, int]]
"""Given a window's pending chunks and its late-file count (None: never written), store the
file and return ``(key, late_files)``; key None when the chunks were consumed without a file
(set aside, none fitting the window's sensor limit)."""

WindowsWriter = Callable[[list[WindowJob]], list["tuple[str | None, int] | Exception"]]
"""Store the files of several windows at once; for each job, ``(key, late_files)`` (key None
as for :data:`WindowWriter`) or the exception that kept it from being written (that window
stays pending)."""


class SpoolPort(Protocol):
    """What the batcher needs from a spool: SQLite locally, the object store on Lambda."""

    def add(self, msg_key: str, digest: str, last_ts_ms: int, chunks: Iterable[Chunk]) -> str:
        """``added``, ``conflict`` (same id, other content; stored) or ``duplicate``."""
        ...

    def add_many(self, entries: Sequence[Entry]) -> list[str]:
        """:meth:`add` for each entry in order, made durable together; an entry repeating
        an earlier one of the same call is a ``duplicate``."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """Group the adds inside into one durable commit (the caller acknowledges after)."""
        ...

    def is_flushed(self, asset: str, window_end: int) -> bool: ...

    def pending_windows(self) -> list[tuple[str, int]]: ...

    def write_window(self, asset: str, window_end: int, write: WindowWriter) -> str | None:
        """Hand the window's chunks to *write*, then forget them and remember the window as
        written; None when no chunk was pending (another process wrote it)."""
        ...

    def write_windows(
        self, windows: Sequence[tuple[str, int]], write: WindowsWriter
    ) -> dict[tuple[str, int], str | Exception | None]:
        """:meth:`write_window` for several windows with one call of *write*, so their files
        can be made durable together; the result has, per window that had chunks, its key
        or the exception *write* gave for it (that window stays pending)."""
        ...

    def forget_before(self, ts_ms: int, window_end: int) -> None: ...

    def close(self) -> None: ...


class Spool:
    """SQLite file (or ``:memory:`` when no path is given) plus in-memory indexes."""

    def __init__(
        self, path: str | None = None, *, durable: bool = False, shared: bool = False
    ) -> None:
        self.path = path or ":memory:"
        self.shared = shared and path is not None
        self._lock = threading.RLock()
        self._writers = threading.Lock()
        """Held by :meth:`write_windows` throughout: one window writer at a time."""
        self._deferred = threading.local()
        """``rows``: archive rows queued by the writer that :meth:`write_windows` is running
        outside its transaction, inserted with it."""
        self._in_batch = False
        try:
            if path:
                private_file(path)
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_S
            )
            if path:
                # Before the first table exists: a spool file made by an earlier version
                # keeps its page size (WAL cannot change it), which only costs speed.
                self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")
                self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                _use_wal(self._db)
                self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._load()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"{self.path}: cannot open batcher spool: {exc}") from exc

    def _load(self) -> None:
        """Rebuild the in-memory indexes (not kept in shared mode)."""
        self._seen: set[tuple[str, str]] = set()
        self._keys: set[str] = set()
        self._flushed: dict[tuple[str, int], int] = {}
        self._pending: dict[tuple[str, int], int] = {}
        if self.shared:
            return
        self._seen = {(k, d) for k, d in self._db.execute("SELECT msg_key, digest FROM seen")}
        self._keys = {k for k, _ in self._seen}
        self._flushed = {
            (a, int(e)): int(n)
            for a, e, n in self._db.execute("SELECT asset, window_end, late_files FROM flushed")
        }
        for a, e, n in self._db.execute(
            "SELECT asset, window_end, COUNT(*) FROM chunks GROUP BY asset, window_end"
        ):
            self._pending[(a, int(e))] = int(n)

    def add(self, msg_key: str, digest: str, last_ts_ms: int, chunks: Iterable[Chunk]) -> str:
        """Commit one message's chunks and its id atomically.

        Returns ``duplicate`` (this id with this content was seen: nothing stored),
        ``conflict`` (this id was seen with other content: stored) or ``added``.
        """
        return self.add_many([Entry(msg_key, digest, last_ts_ms, list(chunks))])[0]

    def add_many(self, entries: Sequence[Entry]) -> list[str]:
        """Commit many messages' chunks and ids in one transaction (two ``executemany``):
        the cost of a commit is paid once per batch, not once per message."""
        with self._lock:
            outcomes: list[str] = []
            chunk_rows: list[tuple[str, int, str, str]] = []
            seen_rows: list[tuple[str, str, int]] = []
            fresh: set[tuple[str, str]] = set()
            fresh_keys: set[str] = set()
            try:
                if not self._in_batch:
                    self._db.execute("BEGIN IMMEDIATE" if self.shared else "BEGIN")
                for entry in entries:
                    pair = (entry.msg_key, entry.digest)
                    if pair in fresh or (not self.shared and pair in self._seen):
                        outcomes.append("duplicate")
                        continue
                    if self.shared:
                        digests = {
                            d
                            for (d,) in self._db.execute(
                                "SELECT digest FROM seen WHERE msg_key = ?", (entry.msg_key,)
                            )
                        }
                        if entry.digest in digests:
                            outcomes.append("duplicate")
                            continue
                        known = bool(digests)
                    else:
                        known = entry.msg_key in self._keys
                    known = known or entry.msg_key in fresh_keys
                    outcomes.append("conflict" if known else "added")
                    fresh.add(pair)
                    fresh_keys.add(entry.msg_key)
                    seen_rows.append((entry.msg_key, entry.digest, entry.last_ts_ms))
                    for c in entry.chunks:
                        chunk_rows.append(
                            (c.asset, c.window_end, c.msg_id, c.body or json.dumps(c.samples))
                        )
                self._db.executemany(
                    "INSERT INTO chunks (asset, window_end, msg_id, samples) VALUES (?, ?, ?, ?)",
                    chunk_rows,
                )
                self._db.executemany(
                    "INSERT INTO seen (msg_key, digest, last_ts_ms) VALUES (?, ?, ?)", seen_rows
                )
                if not self._in_batch:
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if not self._in_batch:
                    self._rollback()
                raise StorageError(f"{self.path}: spool write failed: {exc}") from exc
            if not self.shared:
                self._seen.update(fresh)
                self._keys.update(fresh_keys)
                pending = self._pending
                for asset, end, _m, _b in chunk_rows:
                    window = (asset, end)
                    pending[window] = pending.get(window, 0) + 1
            return outcomes

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for many adds: one commit instead of one per message. Writers of
        windows wait for it (they need the same lock)."""
        with self._lock:
            if self._in_batch:
                yield
                return
            self._db.execute("BEGIN IMMEDIATE" if self.shared else "BEGIN")
            self._in_batch = True
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                self._load()  # the indexes saw adds that are gone now
                raise
            finally:
                self._in_batch = False

    def is_flushed(self, asset: str, window_end: int) -> bool:
        with self._lock:
            if not self.shared:
                return (asset, window_end) in self._flushed
            row = self._db.execute(
                "SELECT 1 FROM flushed WHERE asset = ? AND window_end = ?", (asset, window_end)
            ).fetchone()
            return row is not None

    def pending_windows(self) -> list[tuple[str, int]]:
        with self._lock:
            if not self.shared:
                return sorted(self._pending)
            rows = self._db.execute("SELECT DISTINCT asset, window_end FROM chunks").fetchall()
        return sorted((a, int(e)) for a, e in rows)

    def write_window(self, asset: str, window_end: int, write: WindowWriter) -> str | None:
        def write_one(jobs: list[WindowJob]) -> list[tuple[str | None, int] | Exception]:
            return [write(job.chunks, job.late_files) for job in jobs]

        outcome = self.write_windows([(asset, window_end)], write_one).get((asset, window_end))
        if isinstance(outcome, Exception):  # write_one raises instead; kept for the types
            raise outcome
        return outcome

    def write_windows(
        self, windows: Sequence[tuple[str, int]], write: WindowsWriter
    ) -> dict[tuple[str, int], str | Exception | None]:
        """Read the windows' chunks, let *write* store their files, then forget the chunks
        of each window written and remember it as written, in one transaction with the
        archive rows *write* queued. An exception *write* raises (rather than returns)
        changes nothing.

        Why *write* runs without the spool's lock (a private spool, outside a
        :meth:`batch`): it syncs files, which held the lock for a third of an ingest run,
        and the rules worker waited on it to commit its batches (a tenth of the run). Adds
        made meanwhile are safe: a window's new chunks get larger ids than those read, so
        they stay pending (a late file), and the window is marked written only with the
        rest. A process killed before the final transaction leaves the window pending, and
        it is written again, as when the transaction was rolled back. Window writers still
        run one at a time. A shared spool keeps everything in one transaction under
        SQLite's write lock, so two processes never write one window differently."""
        with self._writers:
            with self._lock:
                if self.shared or self._in_batch:
                    return self._write_windows_at_once(windows, write)
                try:
                    jobs, ids = self._read_jobs(windows)
                except sqlite3.Error as exc:
                    raise StorageError(f"{self.path}: spool read failed: {exc}") from exc
            deferred: list[tuple[object, ...]] = []
            self._deferred.rows = deferred
            try:
                outcomes = write(jobs) if jobs else []
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: spool update failed: {exc}") from exc
            finally:
                self._deferred.rows = None
            with self._lock:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    results, written = self._record_written(jobs, ids, outcomes)
                    self._db.executemany(_ARCHIVE_INSERT, deferred)
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._rollback()
                    raise StorageError(f"{self.path}: spool update failed: {exc}") from exc
                except BaseException:
                    self._rollback()
                    raise
                self._note_written(written)
                return results

    def _write_windows_at_once(
        self, windows: Sequence[tuple[str, int]], write: WindowsWriter
    ) -> dict[tuple[str, int], str | Exception | None]:
        """:meth:`write_windows` in one transaction, *write* included (the caller holds the
        lock)."""
        own = not self._in_batch
        try:
            if own:
                self._db.execute("BEGIN IMMEDIATE")
            jobs, ids = self._read_jobs(windows)
            outcomes = write(jobs) if jobs else []
            results, written = self._record_written(jobs, ids, outcomes)
            if own:
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if own:
                self._rollback()
            raise StorageError(f"{self.path}: spool update failed: {exc}") from exc
        except BaseException:
            if own:
                self._rollback()
            raise
        self._note_written(written)
        return results

    def _read_jobs(
        self, windows: Sequence[tuple[str, int]]
    ) -> tuple[list[WindowJob], list[list[int]]]:
        """Each window's pending chunks and late-file count, and the chunks' ids; a window
        with none is no longer pending."""
        jobs: list[WindowJob] = []
        ids: list[list[int]] = []
        for asset, window_end in windows:
            rows = self._db.execute(
                "SELECT id, msg_id, samples FROM chunks WHERE asset = ? AND window_end = ?"
                " ORDER BY id",
                (asset, window_end),
            ).fetchall()
            if not rows:
                self._pending.pop((asset, window_end), None)
                continue
            chunks = [Chunk(asset, window_end, m, [], str(i), b) for i, m, b in rows]
            late = self._late_files(asset, window_end)
            jobs.append(WindowJob(asset, window_end, chunks, late))
            ids.append([i for i, _, _ in rows])
        return jobs, ids

    def _record_written(
        self,
        jobs: list[WindowJob],
        ids: list[list[int]],
        outcomes: list[tuple[str | None, int] | Exception],
    ) -> tuple[dict[tuple[str, int], str | Exception | None], list[tuple[str, int, int, int]]]:
        """Forget the chunks of each window written and mark it written (inside the
        caller's transaction); the results, and what :meth:`_note_written` must record."""
        results: dict[tuple[str, int], str | Exception | None] = {}
        written: list[tuple[str, int, int, int]] = []
        for job, chunk_ids, outcome in zip(jobs, ids, outcomes, strict=True):
            if isinstance(outcome, Exception):
                results[(job.asset, job.window_end)] = outcome
                continue
            key, late_files = outcome
            # the chunks read, and only those: ids only grow, so a chunk added since has a
            # larger one and stays pending
            self._db.execute(
                "DELETE FROM chunks WHERE asset = ? AND window_end = ? AND id <= ?",
                (job.asset, job.window_end, chunk_ids[-1]),
            )
            self._db.execute(
                "INSERT INTO flushed (asset, window_end, late_files) VALUES (?, ?, ?)"
                " ON CONFLICT (asset, window_end)"
                " DO UPDATE SET late_files = excluded.late_files",
                (job.asset, job.window_end, late_files),
            )
            results[(job.asset, job.window_end)] = key
            written.append((job.asset, job.window_end, len(chunk_ids), late_files))
        return results, written

    def _note_written(self, written: list[tuple[str, int, int, int]]) -> None:
        """The in-memory indexes, once the transaction that wrote the windows committed."""
        if self.shared:
            return
        for asset, window_end, count, late_files in written:
            left = self._pending.get((asset, window_end), 0) - count
            if left > 0:
                self._pending[(asset, window_end)] = left
            else:
                self._pending.pop((asset, window_end), None)
            self._flushed[(asset, window_end)] = late_files

    def _late_files(self, asset: str, window_end: int) -> int | None:
        """The window's late-file count (None: never written), from the index the spool
        keeps unless it is shared (then another process may have written it)."""
        if not self.shared:
            return self._flushed.get((asset, window_end))
        found = self._db.execute(
            "SELECT late_files FROM flushed WHERE asset = ? AND window_end = ?",
            (asset, window_end),
        ).fetchone()
        return None if found is None else int(found[0])

    # ---- the archive's queue ------------------------------------------------------------

    def archive_add(
        self,
        site: str,
        asset: str,
        window_end: int,
        late: int,
        readings: int,
        body: bytes,
        queued_at: float,
    ) -> None:
        """Queue a written file's rows; called by a :data:`WindowWriter`, so it commits with
        the window (or not at all): while :meth:`write_windows` runs the writer outside
        its transaction, the row waits for that transaction."""
        row = (site, asset, window_end, late, queued_at, readings, body)
        deferred = getattr(self._deferred, "rows", None)
        if deferred is not None:
            deferred.append(row)
            return
        with self._lock:
            try:
                self._db.execute(_ARCHIVE_INSERT, row)
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: archive queue write failed: {exc}") from exc

    def archive_pending(self, max_readings: int) -> list[QueuedWindow]:
        """The oldest queued files, in queue order, up to about *max_readings* (at least
        one file)."""
        taken: list[QueuedWindow] = []
        total = 0
        with self._lock:
            try:
                cursor = self._db.execute(
                    "SELECT id, site, asset, window_end, late, queued_at, readings, body"
                    " FROM archive_queue ORDER BY id"
                )
                for row in cursor:
                    if taken and total + int(row[6]) > max_readings:
                        break
                    taken.append(QueuedWindow(*row))
                    total += int(row[6])
                cursor.close()
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: archive queue read failed: {exc}") from exc
        return taken

    def archive_backlog(self) -> tuple[int, int, float | None]:
        """``(files, readings, oldest queued_at)`` waiting for the archive."""
        with self._lock:
            files, readings, oldest = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(readings), 0), MIN(queued_at) FROM archive_queue"
            ).fetchone()
        return int(files), int(readings), None if oldest is None else float(oldest)

    def archive_ack(self, last_id: int) -> None:
        """Forget every queued file up to *last_id*: the archive holds them."""
        with self._lock:
            try:
                self._db.execute("DELETE FROM archive_queue WHERE id <= ?", (last_id,))
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: archive queue update failed: {exc}") from exc

    def archive_floor(self, last_id: int) -> None:
        """Make every later queue id larger than *last_id* (a spool file made anew must not
        hand out ids the archive already counts as written)."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'archive_queue'"
            ).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('archive_queue', ?)",
                    (last_id,),
                )
            elif int(row[0]) < last_id:
                self._db.execute(
                    "UPDATE sqlite_sequence SET seq = ? WHERE name = 'archive_queue'", (last_id,)
                )

    def forget_before(self, ts_ms: int, window_end: int) -> None:
        """Drop dedup ids and written-window marks too old to matter (older readings are
        quarantined as out of range anyway), so the memory stays bounded. A written window
        that still has rows pending (late rows the store would not take yet) keeps its
        mark: without it those rows would be written as the window's first file, over it."""
        with self._lock:
            seen = self._db.execute("DELETE FROM seen WHERE last_ts_ms < ?", (ts_ms,)).rowcount
            flushed = self._db.execute(
                "DELETE FROM flushed WHERE window_end < ? AND NOT EXISTS (SELECT 1 FROM chunks"
                " WHERE chunks.asset = flushed.asset AND chunks.window_end = flushed.window_end)",
                (window_end,),
            ).rowcount
            if seen or flushed:  # rebuilding the indexes reads every id still kept
                self._load()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL, waiting out another process doing the same: when several runners open
    one new shared spool at once, SQLite answers the losers' switch "database is locked"
    at once, without waiting through the busy timeout."""
    deadline = time.monotonic() + BUSY_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
