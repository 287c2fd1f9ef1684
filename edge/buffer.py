"""SqliteBuffer: the durable store-and-forward queue between sources and the broker.

Every reading is committed here before ``submit`` returns, and leaves only when the PUBACK
of the message carrying it arrives. A message is *formed* (given a ``seq``) only when it is
about to be sent; the seq and its readings are committed together, so a replay after a
crash re-sends the same readings under the same ``msg_id`` (``sender:seq``) and the cloud
can de-duplicate.

Durability: WAL journal with ``synchronous=FULL`` by default. In WAL mode ``NORMAL`` never
corrupts the database but may lose the last transactions on power loss (the WAL is not
fsynced at commit). ``submit`` promises that an accepted reading survives, so the default
fsyncs every commit; ``NORMAL`` is offered for flash-wear-sensitive devices where losing
the last second of readings on power loss is acceptable. Either survives SIGKILL.

An acknowledgement is committed without its own fsync even under ``FULL`` (the next
reading's or message's commit makes it durable): lost to a power cut, it only makes the
agent send those messages again under the same ``msg_id``, which the cloud de-duplicates,
and it saves the sender a disk flush between a PUBACK and the next message.

Ages (``max_age_s``, the batch delay) are wall-clock differences, and the wall clock can be
stepped (an RTC-less board syncing NTP after boot). Each call that reads the time compares
the wall clock's move with the clock's monotonic time; a step moves the enqueue times of
the readings this process queued by the same amount, so a reading queued a minute ago is
not dropped as a day old. Readings from an earlier run keep their times: there is no
evidence of which clock they were stamped with.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import reprlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.clock import Clock
from edge.errors import ConfigError, StorageError, WireFormatError
from edge.files import damaged_name, private_file
from edge.wire import MAX_PAYLOAD_BYTES, Sample, Telemetry, encode, from_document

FULL_POLICIES = ("drop_oldest", "refuse")
STEP_TOLERANCE_S = 2.0
"""A wall-clock move this much larger or smaller than the time that ran is a step."""
DROP_LOG_INTERVAL_S = 60.0
"""The least time (monotonic seconds) between two lines about dropped readings."""
RESERVE_BYTES = 8 * 1024 * 1024
"""Free disk the queue leaves for sending what it holds: forming and acknowledging a
message write too (WAL frames, up to a 4 MB WAL before its checkpoint), so a queue that
took the last byte of its disk could never send again and the disk would never free."""
MIN_RESERVE_BYTES = 6 * 1024 * 1024
"""The least reserve the agent takes (``[queue].reserve_bytes``): the WAL grows to about
4 MB (1000 pages of 4 KiB, SQLite's automatic checkpoint) while messages are formed and
acknowledged. Measured on a 16 MiB tmpfs filled by the queue, then drained with retries:
a 4 MiB reserve left the queue unable to form or acknowledge (``database or disk is
full``) for good, 5 MiB drained it; 6 MiB keeps a MiB over that."""

log = logging.getLogger(__name__)
SYNC_MODES = ("FULL", "NORMAL")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asset TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    size INTEGER NOT NULL,
    enq REAL NOT NULL,
    seq INTEGER
);
CREATE INDEX IF NOT EXISTS readings_unformed ON readings (asset, seq, id);
CREATE INDEX IF NOT EXISTS readings_seq ON readings (seq);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    asset TEXT NOT NULL,
    formed REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

SAMPLE_OVERHEAD = len('{"ts":,"values":},')
"""Bytes a sample adds to a payload beyond its ts digits and values JSON."""
MAX_READING_BYTES = MAX_PAYLOAD_BYTES - 1024
"""The most values JSON one stored row holds: alone in a message it still fits IoT Core's
128 KB payload limit with the longest names (the header of three 128-character names and a
19-digit seq is under 500 bytes). A reading with more is stored as several rows of the same
time, its sensors divided among them; the batcher merges readings that share a timestamp
into one row, so nothing downstream sees the split."""


class BufferFullError(StorageError):
    """The queue is at its byte limit and the policy is ``refuse``."""


@dataclass(frozen=True, slots=True)
class BufferStats:
    depth: int
    bytes: int
    oldest_enq: float | None
    formed: int
    sent: int
    dropped: int


class SqliteBuffer:
    """A bounded on-disk FIFO of readings, grouped into numbered messages on demand.

    Thread-safe: one connection behind a lock (the agent's submit, sender and status paths
    share it). Limits: *max_bytes* of stored sample JSON and, optionally, *max_age_s*;
    when full, ``drop_oldest`` discards the oldest readings (whole messages when formed)
    and counts them, ``refuse`` raises BufferFullError so the caller can back off.
    """

    def __init__(
        self,
        path: str | Path,
        clock: Clock,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        max_age_s: float | None = None,
        full_policy: str = "drop_oldest",
        synchronous: str = "FULL",
        reserve_bytes: int = RESERVE_BYTES,
    ) -> None:
        if full_policy not in FULL_POLICIES:
            raise ConfigError(
                f"full_policy {full_policy!r}: expected one of {', '.join(FULL_POLICIES)}"
            )
        if synchronous.upper() not in SYNC_MODES:
            raise ConfigError(
                f"synchronous {synchronous!r}: expected one of {', '.join(SYNC_MODES)}"
            )
        self.path = Path(path)
        self._clock = clock
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.full_policy = full_policy
        self.reserve_bytes = reserve_bytes
        self._synchronous = synchronous.upper()
        self._lock = threading.Lock()
        self.damaged_file: Path | None = None
        """Where a damaged queue found at open was moved (None when it was whole)."""
        try:
            try:
                self._open()
            except _Damaged as exc:
                self.damaged_file = _move_aside(self.path)
                log.error(
                    "queue %s: the file is damaged (%s); moved it to %s and started an empty "
                    "queue; recover its readings with 'sqlite3 %s .recover'",
                    self.path,
                    exc,
                    self.damaged_file,
                    self.damaged_file,
                )
                self._open()
        except (sqlite3.Error, OSError, _Damaged) as exc:
            raise StorageError(f"queue {self.path}: cannot open ({exc}){_open_hint(exc)}") from exc
        self._seen: tuple[float, float] | None = None
        self._unlogged = (0, 0)
        """Readings dropped for age and for size since the last line that said so."""
        self._drop_logged: float | None = None

    def _open(self) -> None:
        private_file(self.path)
        self._db = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={self._synchronous}")
            _check_intact(self._db)
            self._db.executescript(_SCHEMA)
            self._bytes, self._depth, self._run_after = self._db.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*), "
                "(SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'readings') "
                "FROM readings"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if getattr(exc, "sqlite_errorname", "") in _DAMAGE_ERRORS:
                raise _Damaged(str(exc)) from exc
            raise
        except _Damaged:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, asset: str, samples: Sequence[Sample]) -> int:
        """Validate and commit *samples*; return how many readings were dropped (older
        ones, or under ``drop_oldest`` the oldest of *samples* themselves when they alone
        exceed ``max_bytes``: the bound holds either way)."""
        if not samples:
            return 0
        with self._lock:
            self._keep_reserve()
            now = self._now()
            rows = _rows(asset, samples, now)
            trimmed = _over_bound(rows, self.max_bytes) if self.full_policy == "drop_oldest" else 0
            rows = rows[trimmed:]
            incoming = sum(r[3] for r in rows)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                aged, full = self._make_room(incoming, now)
                full += trimmed
                self._count_dropped(aged + full)
                self._db.executemany(
                    "INSERT INTO readings (asset, ts_ms, body, size, enq) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BufferFullError:
                self._rollback()
                self._recount()
                raise
            except sqlite3.Error as exc:
                self._rollback()
                self._recount()
                if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
                    self._checkpoint()  # a WAL that grew into the last free bytes
                raise StorageError(f"queue {self.path}: write failed ({exc})") from exc
            self._bytes += incoming
            self._depth += len(rows)
            self._log_drops(aged, full)
            return aged + full

    def _keep_reserve(self) -> None:
        """Refuse new readings while the disk, counting the pages the queue file already
        holds free, has less than ``reserve_bytes`` left, so the messages queued can still
        be formed and acknowledged, which frees pages for new readings. A checkpoint that
        empties the WAL is tried first: on a small disk the WAL may hold much of the space.
        The caller holds the lock."""
        if self._room() >= self.reserve_bytes:
            return
        self._checkpoint()
        room = self._room()
        if room < self.reserve_bytes:
            raise StorageError(
                f"queue {self.path}: the disk is nearly full ({room} bytes free, "
                f"{self.reserve_bytes} kept for sending the queued readings); new readings "
                "are refused until space comes back"
            )

    def _room(self) -> int:
        """Bytes new readings may take: free disk plus the queue file's free pages (a
        drained queue keeps its file's size and reuses those pages)."""
        try:
            stats = os.statvfs(self.path.parent)
            pages, size = (
                self._db.execute(f"PRAGMA {pragma}").fetchone()[0]
                for pragma in ("freelist_count", "page_size")
            )
        except (OSError, sqlite3.Error):
            return self.reserve_bytes  # the system cannot say: the write itself will tell
        return stats.f_bavail * stats.f_frsize + pages * size

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it, giving its disk space back."""
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _make_room(self, incoming: int, now: float) -> tuple[int, int]:
        """Apply the age and byte limits inside the caller's transaction; return how many
        readings each dropped."""
        aged = 0
        if self.max_age_s is not None:
            cutoff = now - self.max_age_s
            # a formed message goes whole once any of its readings expires: sent again
            # with fewer readings, its msg_id would change content (an id conflict in the
            # cloud, which may hold the first copy)
            aged = self._drop_where(
                "seq IN (SELECT DISTINCT seq FROM readings WHERE enq < ? AND seq IS NOT NULL)",
                (cutoff,),
            )
            aged += self._drop_where("seq IS NULL AND enq < ?", (cutoff,))
        if self._bytes + incoming <= self.max_bytes:
            return aged, 0
        if self.full_policy == "refuse":
            raise BufferFullError(
                f"queue {self.path} is full ({self._bytes} of {self.max_bytes} bytes); "
                "policy is refuse"
            )
        dropped = 0
        while self._bytes + incoming > self.max_bytes and self._depth > 0:
            row = self._db.execute("SELECT id, seq FROM readings ORDER BY id LIMIT 1").fetchone()
            if row[1] is not None:
                dropped += self._drop_where("seq = ?", (row[1],))
                self._db.execute("DELETE FROM messages WHERE seq = ?", (row[1],))
            else:
                # drop a slice of unformed readings at once: cheap, and bounded by need
                need = self._bytes + incoming - self.max_bytes
                cut = self._db.execute(
                    "SELECT MAX(id) FROM (SELECT id, size, SUM(size) OVER (ORDER BY id) AS run "
                    "FROM readings WHERE seq IS NULL AND id >= ? ORDER BY id LIMIT 10000) "
                    "WHERE run - size < ?",
                    (row[0], need),
                ).fetchone()[0]
                dropped += self._drop_where("seq IS NULL AND id <= ?", (cut or row[0],))
        return aged, dropped

    def _log_drops(self, aged: int, full: int) -> None:
        """One warning line per :data:`DROP_LOG_INTERVAL_S` at most, with the drops since
        the last line: a device's log must show that it is losing data, without a line for
        every reading of a queue that stays full. The caller holds the lock."""
        self._unlogged = (self._unlogged[0] + aged, self._unlogged[1] + full)
        ran = self._clock.monotonic()
        if sum(self._unlogged) == 0 or (
            self._drop_logged is not None and ran - self._drop_logged < DROP_LOG_INTERVAL_S
        ):
            return
        (aged, full), self._unlogged, self._drop_logged = self._unlogged, (0, 0), ran
        why = [f"{n} past max_age_s ({self.max_age_s:g} s)" for n in [aged] if n]
        why += [f"{n} over max_bytes ({self.max_bytes})" for n in [full] if n]
        count = aged + full
        log.warning(
            "queue %s: dropped %d oldest reading%s (%s); %d in all",
            self.path,
            count,
            "" if count == 1 else "s",
            ", ".join(why),
            self._meta("dropped"),
        )

    def _now(self) -> float:
        """The wall time, after moving this run's enqueue times by any step of the wall
        clock since the last call (see the module docstring). The caller holds the lock."""
        wall, ran = self._clock.now(), self._clock.monotonic()
        seen, self._seen = self._seen, (wall, ran)
        if seen is None:
            return wall
        step = (wall - seen[0]) - (ran - seen[1])
        if abs(step) <= STEP_TOLERANCE_S:
            return wall
        try:
            self._db.execute(
                "UPDATE readings SET enq = enq + ? WHERE id > ?", (step, self._run_after)
            )
        except sqlite3.Error as exc:
            self._seen = seen
            raise StorageError(f"queue {self.path}: write failed ({exc})") from exc
        log.warning(
            "the wall clock stepped by %+.1f s; readings queued since start keep their age", step
        )
        return wall

    def _drop_where(self, where: str, params: tuple[object, ...]) -> int:
        size, count = self._db.execute(
            f"SELECT COALESCE(SUM(size), 0), COUNT(*) FROM readings WHERE {where}", params
        ).fetchone()
        if count:
            self._db.execute(f"DELETE FROM readings WHERE {where}", params)
            self._db.execute(
                "DELETE FROM messages WHERE seq NOT IN (SELECT DISTINCT seq FROM readings "
                "WHERE seq IS NOT NULL)"
            )
            self._bytes -= size
            self._depth -= count
        return int(count)

    def _count_dropped(self, dropped: int) -> None:
        if dropped:
            self._bump("dropped", dropped)

    def _bump(self, key: str, amount: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (key, amount),
        )

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def formed(self) -> list[tuple[int, str]]:
        """``(seq, asset)`` of every formed, unacknowledged message, oldest first."""
        with self._lock:
            return self._db.execute("SELECT seq, asset FROM messages ORDER BY seq").fetchall()

    def unformed(self) -> dict[str, tuple[int, float]]:
        """Per asset: how many readings await a message, and the oldest one's enqueue time."""
        with self._lock:
            self._now()
            rows = self._db.execute(
                "SELECT asset, COUNT(*), MIN(enq) FROM readings WHERE seq IS NULL GROUP BY asset"
            ).fetchall()
        return {asset: (int(n), float(enq)) for asset, n, enq in rows}

    def form(
        self, site: str, sender: str, asset: str, max_samples: int, max_bytes: int = 0
    ) -> Telemetry | None:
        """Give the oldest unformed readings of *asset* the next seq and return the message.

        The message holds at most *max_samples* samples and its payload at most *max_bytes*
        (default: the wire limit less a margin).
        """
        budget = (max_bytes or MAX_PAYLOAD_BYTES - 512) - _header_bytes(site, asset, sender)
        with self._lock:
            rows = self._db.execute(
                "SELECT id, ts_ms, body, size FROM readings WHERE asset = ? AND seq IS NULL "
                "ORDER BY id LIMIT ?",
                (asset, max_samples),
            ).fetchall()
            chosen = []
            used = 0
            for row in rows:
                cost = row[3] + SAMPLE_OVERHEAD + len(str(row[1]))
                if chosen and used + cost > budget:
                    break
                chosen.append(row)
                used += cost
            if not chosen:
                return None
            formed_at = self._now()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seq = self._meta("next_seq")
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('next_seq', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (seq + 1,),
                )
                self._db.execute(
                    "INSERT INTO messages (seq, asset, formed) VALUES (?, ?, ?)",
                    (seq, asset, formed_at),
                )
                self._db.execute(
                    "UPDATE readings SET seq = ? WHERE asset = ? AND seq IS NULL AND id BETWEEN ? AND ?",
                    (seq, asset, chosen[0][0], chosen[-1][0]),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"queue {self.path}: form failed ({exc})") from exc
        samples = tuple(Sample(ts_ms=r[1], values=json.loads(r[2])) for r in chosen)
        return Telemetry(site, asset, sender, seq, samples)

    def message(self, site: str, sender: str, seq: int) -> Telemetry | None:
        """Rebuild formed message *seq* exactly as first formed (same readings, same seq)."""
        with self._lock:
            head = self._db.execute("SELECT asset FROM messages WHERE seq = ?", (seq,)).fetchone()
            if head is None:
                return None
            rows = self._db.execute(
                "SELECT ts_ms, body FROM readings WHERE seq = ? ORDER BY id", (seq,)
            ).fetchall()
        if not rows:
            return None
        samples = tuple(Sample(ts_ms=ts, values=json.loads(body)) for ts, body in rows)
        return Telemetry(site, head[0], sender, seq, samples)

    def unform(self, seq: int) -> None:
        """Give message *seq*'s readings back to the queue unformed, a reading too large
        for one message stored again in parts (:data:`MAX_READING_BYTES`). Only for a
        message never sent: its payload would pass the wire limit (a queue written before
        readings were split at queueing), so no copy of that id exists anywhere."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                rows = self._db.execute(
                    "SELECT id, asset, ts_ms, body, enq FROM readings WHERE seq = ? "
                    "AND size > ? ORDER BY id",
                    (seq, MAX_READING_BYTES),
                ).fetchall()
                for row_id, asset, ts_ms, body, enq in rows:
                    self._db.execute("DELETE FROM readings WHERE id = ?", (row_id,))
                    self._db.executemany(
                        "INSERT INTO readings (asset, ts_ms, body, size, enq) VALUES (?, ?, ?, ?, ?)",
                        [
                            (asset, ts_ms, part, len(part), enq)
                            for part in _split_values(json.loads(body))
                        ],
                    )
                self._db.execute("UPDATE readings SET seq = NULL WHERE seq = ?", (seq,))
                self._db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"queue {self.path}: write failed ({exc})") from exc
            finally:
                self._recount()

    def ack(self, seqs: Sequence[int]) -> int:
        """Delete acknowledged messages; return how many readings left the queue."""
        if not seqs:
            return 0
        params = [(s,) for s in seqs]
        with self._lock, self._without_fsync():
            try:
                self._db.execute("BEGIN IMMEDIATE")
                size, count = 0, 0
                for (seq,) in params:
                    s, c = self._db.execute(
                        "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM readings WHERE seq = ?",
                        (seq,),
                    ).fetchone()
                    size += s
                    count += c
                self._db.executemany("DELETE FROM readings WHERE seq = ?", params)
                self._db.executemany("DELETE FROM messages WHERE seq = ?", params)
                if count:
                    self._bump("sent", count)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"queue {self.path}: ack failed ({exc})") from exc
            self._bytes -= size
            self._depth -= count
            return int(count)

    @contextlib.contextmanager
    def _without_fsync(self) -> Iterator[None]:
        """Commits inside are not flushed to disk on their own (see the module docstring)."""
        if self._synchronous == "NORMAL":
            yield
            return
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self._db.execute(f"PRAGMA synchronous={self._synchronous}")

    def stats(self) -> BufferStats:
        with self._lock:
            self._now()
            oldest = self._db.execute("SELECT MIN(enq) FROM readings").fetchone()[0]
            formed = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
            return BufferStats(
                depth=self._depth,
                bytes=self._bytes,
                oldest_enq=oldest,
                formed=int(formed),
                sent=self._meta("sent"),
                dropped=self._meta("dropped"),
            )

    def _recount(self) -> None:
        """Resynchronise the cached totals after a rolled-back transaction."""
        self._bytes, self._depth = self._db.execute(
            "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM readings"
        ).fetchone()

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")


class _Damaged(Exception):
    """The queue file is not a whole SQLite database."""


def _open_hint(error: BaseException) -> str:
    """What to do about a queue that cannot be opened, where the error tells."""
    code = getattr(error, "errno", None)
    name = getattr(error, "sqlite_errorname", "")
    if code == errno.EROFS:
        return "; its file system is read-only: remount it read-write or choose another queue path"
    if code in (errno.EACCES, errno.EPERM) or name.startswith("SQLITE_READONLY"):
        return (
            "; the user running the agent may not write it: give that user the file, its "
            "-wal and -shm files and its folder, or choose another queue path"
        )
    if code == errno.ENOSPC or name == "SQLITE_FULL":
        return "; the disk is full: free space or choose another queue path"
    return ""


_DAMAGE_ERRORS = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def _check_intact(db: sqlite3.Connection) -> None:
    """A damaged queue is found at open (``PRAGMA quick_check``: every page and index, about
    as long as the size scan the open does anyway); found out later, a damaged index fails
    every put, form or ack while the agent looks healthy."""
    problems = [row[0] for row in db.execute("PRAGMA quick_check(3)").fetchall()]
    if problems != ["ok"]:
        raise _Damaged(" ".join("; ".join(problems).split()))  # one line: the report has newlines


def _move_aside(path: Path) -> Path:
    """Rename a damaged queue (and its WAL, which may hold its last commits) out of the way.

    Why not refuse to start: a field agent that stops collects nothing more until someone
    comes, and refusing saves nothing the renamed file does not keep for ``.recover``."""
    aside = damaged_name(path)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(aside.with_name(aside.name + suffix))
    path.rename(aside)
    return aside


def _header_bytes(site: str, asset: str, sender: str) -> int:
    return len(encode(Telemetry(site, asset, sender, 10**12, ()))) + 8


def _rows(
    asset: str, samples: Sequence[Sample], now: float
) -> list[tuple[str, int, str, int, float]]:
    """Validate against the wire contract now, so a bad reading never poisons the queue."""
    check_readings(asset, samples)
    rows = []
    for s in samples:
        body = json.dumps(dict(s.values), separators=(",", ":"), allow_nan=False)
        parts = [body] if len(body) <= MAX_READING_BYTES else _split_values(s.values)
        rows += [(asset, s.ts_ms, part, len(part), now) for part in parts]
    return rows


def _split_values(values: Mapping[str, float | None]) -> list[str]:
    """The values JSON of a reading too large for one message, as parts of at most
    :data:`MAX_READING_BYTES` each (every sensor in exactly one part, in order). One
    sensor is at most a few hundred bytes (a 200-character name and a number)."""
    parts: list[str] = []
    piece: dict[str, float | None] = {}
    size = 2  # the braces
    for name, value in values.items():
        cost = len(json.dumps({name: value}, separators=(",", ":"), allow_nan=False)) - 1
        if piece and size + cost > MAX_READING_BYTES:
            parts.append(json.dumps(piece, separators=(",", ":"), allow_nan=False))
            piece, size = {}, 2
        piece[name] = value
        size += cost
    parts.append(json.dumps(piece, separators=(",", ":"), allow_nan=False))
    return parts


def _over_bound(rows: Sequence[tuple[str, int, str, int, float]], max_bytes: int) -> int:
    """How many of the oldest *rows* must go for the rest to fit in *max_bytes* (the newest
    one is always kept: a lone reading larger than the queue is stored rather than lost)."""
    total = 0
    for kept, row in enumerate(reversed(rows)):
        total += row[3]
        if total > max_bytes and kept:
            return len(rows) - kept
    return 0


def check_readings(asset: str, samples: Sequence[Sample]) -> None:
    """Raise WireFormatError naming the first reading outside the wire contract (or not
    shaped as one: a plugin may hand over anything)."""
    raw = []
    for i, s in enumerate(samples):
        if not hasattr(s, "ts_ms") or not hasattr(s, "values"):
            raise WireFormatError(
                f"samples[{i}]: expected a Sample(ts_ms, values), got {_clipped(s)}",
                reason="bad_schema",
            )
        if not isinstance(s.values, Mapping):
            raise WireFormatError(
                f"samples[{i}].values: expected an object of sensor values, got "
                f"{_clipped(s.values)}",
                reason="bad_schema",
            )
        raw.append({"ts": s.ts_ms, "values": dict(s.values)})
    doc = {"v": 1, "site": "x", "asset": asset, "sender": "x", "seq": 0, "samples": raw}
    from_document(doc)


def _clipped(value: object, limit: int = 40) -> str:
    text = reprlib.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
