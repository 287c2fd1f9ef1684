"""Readings -> one L4E input CSV per component (asset) per upload window.

A window is ``(E - F, E]`` (``cloud.l4e.naming.window_end``); its file is named for ``E`` and
written once ``E + grace <= now``. Readings for a window already written go into a late file
named ``E - k`` seconds (k = 1, 2, ... per late flush): that name lies inside the window
itself, so the scheduler's listing rule (l4e-contracts §4 Choice 1, names within
``[S - F, E + F]``) and the guide's stricter "name within the window" both pick it up for
that window and only keep its rows there. A run that already happened does not re-read it
(Choice 4); late readings are counted so that is visible.

Sites are kept apart (:mod:`cloud.l4e.sites`): a window belongs to ``(site, asset)``, and a
site other than the configured default writes its files under ``<prefix><site>/``. The
spool names a window's owner by the site layout's key (``<asset>`` or ``<site>:<asset>``).

Rows are sorted by timestamp. A redelivered message (same ``site/asset/sender:seq`` and same
content) is a duplicate and is skipped. Two messages with readings at the same timestamp
are merged into one row; on a conflicting sensor the message with the larger
``(sender, seq)`` wins, so the output does not depend on arrival order; two messages with
one ``sender:seq`` and other content (an id conflict: both are kept) are ordered by their
content for that.

With ``archive=True`` every file written is also queued for the Parquet archive, in the
spool transaction that writes the window (:meth:`cloud.batcher.spool.Spool.archive_add`):
the archive then holds exactly what the input files hold, cell for cell, and a crash can
neither lose a queued window nor queue one twice. The queue keeps the file's bytes, so the
batcher does no extra work per reading.

A flush writes each due window on its own: a window the store cannot take right now
(``StorageError``) stays pending and is retried on the next flush, and a window that cannot
be written at all (its rows or its last late file are unreadable) is quarantined whole, with
the reason, as ``unwritable_window``. Either way the other windows are written, and
``flush_due`` never raises for one window's sake, before or after a restart.

A file has at most ``max_sensors`` sensor columns (L4E's 3,000 per dataset,
l4e-contracts §1.4), so a hostile device cannot grow a window's columns without bound: a
message with more distinct sensors is quarantined whole (``too_many_sensors``); when a
window's messages together have more, the ones that would add sensors past the limit (in
the order the spool holds them, arrival order: the sensors that came first stay) are set
aside when the window is written, in one quarantine object with their readings, also
``too_many_sensors``, once the file is stored. The other messages' readings are written.
The limit holds for a window's files together (its first file and late files, which the
scheduler merges): a late file adds sensors only while the total stays within it, and a
late flush none of whose messages fits writes no file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from cloud.batcher.config import BatcherConfig
from cloud.batcher.csv_text import (
    Dumps,
    chunk_samples,
    chunk_sensors,
    file_sensors,
    fragment,
    join_fragments,
    json_dumps,
    merge_rows,
    parse_csv,
    render_rows,
    within_sensor_limit,
)
from cloud.batcher.quarantine import Quarantine
from cloud.batcher.readings import Readings, from_telemetry
from cloud.batcher.spool import Chunk, Entry, Spool, SpoolPort, WindowJob
from cloud.l4e.naming import window_end
from cloud.ports import BatchPutObjectStore, ObjectStore
from edge import wire
from edge.clock import Clock
from edge.errors import (
    ConfigError,
    NotFoundError,
    PlantwatchError,
    StorageError,
    WireFormatError,
)

log = logging.getLogger(__name__)

FLUSH_GROUP = 64
"""Windows written in one spool transaction, their files synced together."""


class Batcher:
    """Thread-safe: the MQTT thread accepts while another thread flushes."""

    def __init__(
        self,
        store: ObjectStore,
        config: BatcherConfig,
        clock: Clock,
        spool_path: str | None = None,
        *,
        durable: bool = False,
        shared_spool: bool = False,
        spool: SpoolPort | None = None,
        decode: Callable[[bytes | str], wire.Telemetry | Readings] = wire.decode,
        archive: bool = False,
        dumps: Dumps = json_dumps,
    ) -> None:
        """*decode* parses a payload by the wire contract (to a Telemetry, or to plain
        :class:`~cloud.batcher.readings.Readings`) and *dumps* writes rows of values as JSON
        (:mod:`cloud.batcher.csv_text` turns that into CSV lines); the local runtime passes
        :func:`cloud.wire_decoder.decode_rows` and :func:`cloud.wire_decoder.dumps`
        (msgspec, compiled), which a Lambda bundle, pure Python, cannot carry."""
        self.decode = decode
        self.dumps = dumps
        self.store = store
        self.config = config
        self.clock = clock
        self.spool: SpoolPort = spool or Spool(spool_path, durable=durable, shared=shared_spool)
        if archive and not hasattr(self.spool, "archive_add"):
            raise ConfigError(
                f"{type(self.spool).__name__} has no archive queue; the archive needs the "
                "SQLite spool"
            )
        self.archive = archive
        self.quarantine = Quarantine(
            store, config.quarantine_prefix, keep_bytes=config.quarantine_keep_bytes
        )
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._pruned_at = float("-inf")
        self._newest_ms = float("-inf")
        """The latest reading accepted (within the skew bound): what pruning goes by."""
        self._batch = threading.local()
        self._topics: dict[str, tuple[str, str]] = {}
        """Telemetry topics already parsed: a fleet has few."""

    # ---- intake -------------------------------------------------------------------------

    def accept(self, topic: str, payload: bytes, *, client_id: str = "n/a") -> None:
        """One raw MQTT message: decode it with the wire contract, or quarantine it."""
        try:
            message = self.decode(payload)
        except WireFormatError as exc:
            self._reject(exc.reason, str(exc), payload, topic, client_id)
            return
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            self._reject(*_unexpected(exc), payload, topic, client_id)
            return
        self._accept_checked(message, payload, topic, client_id)

    def accept_row(
        self, row: dict[str, Any], raw: bytes, topic: str, *, client_id: str = "n/a"
    ) -> None:
        """A rule's SELECT output (a wire payload document); *raw* is kept if it is rejected."""
        try:
            message = wire.from_document(row)
        except WireFormatError as exc:
            self._reject(exc.reason, str(exc), raw, topic, client_id)
            return
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            self._reject(*_unexpected(exc), raw, topic, client_id)
            return
        self._accept_checked(message, raw, topic, client_id)

    def accept_envelope(self, envelope: Any, raw: bytes | None = None) -> None:
        """The project rule's output (``default_rules.json``): the original payload base64
        encoded with its topic and client id, as a Kinesis record carries it on AWS."""
        if isinstance(envelope, dict):
            topic, data = envelope.get("topic"), envelope.get("payload")
            client_id = envelope.get("clientid", "n/a")
            if isinstance(topic, str) and isinstance(data, str):
                try:
                    payload = base64.b64decode(data, validate=True)
                except (binascii.Error, ValueError):
                    pass
                else:
                    self.accept(topic, payload, client_id=str(client_id))
                    return
        body = raw if raw is not None else json.dumps(envelope, default=str).encode()
        self._reject(
            "bad_envelope",
            "expected a rule output {payload: base64, topic, clientid}",
            body,
            str(envelope.get("topic", "")) if isinstance(envelope, dict) else "",
            "n/a",
        )

    def _accept_checked(
        self, message: wire.Telemetry | Readings, raw: bytes, topic: str, client_id: str
    ) -> None:
        """Storage failures propagate (the message stays unacknowledged and is redelivered);
        anything else a decoded message still trips on is quarantined, so one poison message
        can neither be lost nor be retried forever (a Lambda batch item failure blocks its
        Kinesis shard)."""
        try:
            self._accept_message(message, raw, topic, client_id)
        except PlantwatchError:
            raise
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            self._reject(*_unexpected(exc), raw, topic, client_id)

    def _accept_message(
        self, message: wire.Telemetry | Readings, raw: bytes, topic: str, client_id: str
    ) -> None:
        if isinstance(message, wire.Telemetry):
            message = from_telemetry(message)
        cfg = self.config
        parsed = self._topics.get(topic)
        if parsed is None:
            try:
                parsed = wire.parse_telemetry_topic(topic)
            except WireFormatError as exc:
                self._reject(exc.reason, str(exc), raw, topic, client_id)
                return
            if len(self._topics) < 100_000:
                self._topics[topic] = parsed
        site, asset = parsed
        if (site, asset) != (message.site, message.asset):
            self._reject(
                "topic_mismatch",
                f"payload site/asset {message.site}/{message.asset} differs from topic "
                f"{site}/{asset}",
                raw,
                topic,
                client_id,
            )
            return
        if cfg.known_assets is not None and message.asset not in cfg.known_assets:
            self._reject(
                "unknown_asset",
                f"asset: {message.asset!r} is not in the configured asset list",
                raw,
                topic,
                client_id,
            )
            return
        samples = message.rows
        sensors = _sensor_count(message, cfg.max_sensors)
        if sensors > cfg.max_sensors:
            self._reject(
                "too_many_sensors",
                f"samples: {sensors} sensors in one message; an input file holds at most "
                f"{cfg.max_sensors:,} (L4E: at most 3,000 sensors per dataset)",
                raw,
                topic,
                client_id,
            )
            return
        now = self.clock.now()
        stamps = message.times if message.times is not None else [ts_ms for ts_ms, _ in samples]
        earliest, latest = min(stamps), max(stamps)
        bound = cfg.max_skew_s
        if not (abs(earliest / 1000 - now) <= bound and abs(latest / 1000 - now) <= bound):
            for i, ts_ms in enumerate(stamps):  # name the first sample out of range
                skew = ts_ms / 1000 - now
                if not math.isfinite(skew) or abs(skew) > bound:
                    self._reject(
                        "timestamp_out_of_range",
                        f"samples[{i}].ts: {ts_ms} is {skew:+.0f} s from now; "
                        f"at most {bound:.0f} s allowed",
                        raw,
                        topic,
                        client_id,
                    )
                    return
        if latest > self._newest_ms:
            self._newest_ms = latest
        owner = cfg.sites.key(message.site, message.asset)
        freq = cfg.upload_frequency_s
        first_end = int(window_end(earliest / 1000, freq))
        order = _order_key(message)
        columns, table = message.columns, message.table
        if first_end == int(window_end(latest / 1000, freq)):  # one window: the usual case
            body = fragment(samples, self.dumps, columns=columns, table=table, times=stamps)
            chunks = [Chunk(owner, first_end, order, [], body=body)]
            sizes = [len(stamps)]
        else:  # each window's rows, in the message's order; the table's, if the decoder had it
            by_window: dict[int, list[int]] = {}
            for i, ts_ms in enumerate(stamps):
                by_window.setdefault(int(window_end(ts_ms / 1000, freq)), []).append(i)
            chunks, sizes = [], []
            for end, picked in sorted(by_window.items()):
                if columns is not None and table is not None:
                    body = fragment(
                        (),
                        self.dumps,
                        columns=columns,
                        table=[table[i] for i in picked],
                        times=[stamps[i] for i in picked],
                    )
                else:
                    body = fragment([samples[i] for i in picked], self.dumps)
                chunks.append(Chunk(owner, end, order, [], body=body))
                sizes.append(len(picked))
        # Taken over what is stored: a redelivery (the same cells) is a duplicate.
        text = chunks[0].body if len(chunks) == 1 else "\n".join([c.body for c in chunks])
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        entry = Entry(f"{message.site}/{message.asset}/{message.msg_id}", digest, latest, chunks)
        pending = getattr(self._batch, "entries", None)
        if pending is not None:
            pending.append((entry, sizes))
        else:
            self._commit([(entry, sizes)])

    def _commit(self, accepted: list[tuple[Entry, list[int]]]) -> None:
        """Store accepted messages in the spool, then count them (a window's written state
        asked once per call: a batch's messages share a few windows)."""
        outcomes = self.spool.add_many([entry for entry, _ in accepted])
        added = readings = duplicates = conflicts = late = 0
        flushed: dict[tuple[str, int], bool] = {}
        for (entry, sizes), outcome in zip(accepted, outcomes, strict=True):
            if outcome == "duplicate":
                duplicates += 1
                continue
            added += 1
            readings += sum(sizes)
            if outcome == "conflict":
                conflicts += 1
            for chunk, size in zip(entry.chunks, sizes, strict=True):
                window = (chunk.asset, chunk.window_end)
                done = flushed.get(window)
                if done is None:
                    done = flushed[window] = self.spool.is_flushed(*window)
                if done:
                    late += size
        with self._lock:
            counts = self._counts
            for name, count in (
                ("duplicates", duplicates),
                ("accepted", added),
                ("readings", readings),
                ("id_conflicts", conflicts),
                ("late", late),
            ):
                if count:
                    counts[name] += count

    def _reject(self, reason: str, error: str, raw: bytes, topic: str, client_id: str) -> None:
        self.quarantine.put(
            reason, error, raw, topic=topic, client_id=client_id, received_at=self.clock.now()
        )

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Accept many messages with one durable commit; acknowledge them after it ends.

        The messages this thread accepts inside are held back and stored together when the
        block ends (one spool transaction); if the block raises, none of them is stored, and
        none may be acknowledged."""
        if getattr(self._batch, "entries", None) is not None:
            yield  # nested: the outer block commits
            return
        entries: list[tuple[Entry, list[int]]] = []
        self._batch.entries = entries
        try:
            yield
        finally:
            self._batch.entries = None
        if entries:
            self._commit(entries)

    # ---- output -------------------------------------------------------------------------

    def flush_due(self) -> list[str]:
        """Write every window whose end + grace has passed; returns the keys written."""
        now = self.clock.now()
        keys = self._flush(lambda end: end + self.config.grace_s <= now)
        freq = self.config.upload_frequency_s
        if not 0 <= now - self._pruned_at < freq:
            # By the clock, but never past the readings: a clock that jumps ahead (a bad NTP
            # step) takes no reading in (all out of range), and pruning by it alone dropped
            # every dedup id and written-window mark; once it came back, redeliveries were
            # taken again and late rows overwrote their window's first file.
            self._pruned_at = now
            base = min(now, self._newest_ms / 1000)
            if math.isfinite(base):
                horizon = base - self.config.max_skew_s - freq
                self.spool.forget_before(int(horizon * 1000), int(horizon))
        return keys

    def flush_all(self) -> list[str]:
        """Write every pending window now (shutdown): an open window's file is written early,
        and readings arriving for it later go to a late file."""
        return self._flush(lambda _end: True)

    def _flush(self, due: Any) -> list[str]:
        written: list[str] = []
        with self._flush_lock:
            windows = [(owner, end) for owner, end in self.spool.pending_windows() if due(end)]
            for first in range(0, len(windows), FLUSH_GROUP):
                group = windows[first : first + FLUSH_GROUP]
                try:
                    results = self.spool.write_windows(group, self._write_files)
                except StorageError as exc:  # the spool itself failed: all retried next flush
                    with self._lock:
                        self._counts["flush_errors"] += len(group)
                    log.warning("%d windows not written yet (will retry): %s", len(group), exc)
                    continue
                for owner, end in group:
                    outcome = results.get((owner, end))
                    if isinstance(outcome, StorageError):  # the store may come back
                        with self._lock:
                            self._counts["flush_errors"] += 1
                        log.warning(
                            "window %s/%d not written yet (will retry): %s", owner, end, outcome
                        )
                    elif isinstance(outcome, Exception):  # can never be written: set aside
                        self._quarantine_window(owner, end, outcome)
                    elif outcome is not None:
                        written.append(outcome)
                        with self._lock:
                            self._counts["files_written"] += 1
        return written

    def _quarantine_window(self, owner: str, end: int, error: Exception) -> None:
        """Move a window's pending rows to quarantine, so it stops blocking every flush."""
        reason = f"{type(error).__name__}: {error}"
        log.error("window %s/%d cannot be written; quarantined: %s", owner, end, reason)

        def set_aside(chunks: list[Chunk], late_files: int | None) -> tuple[str, int]:
            body = {
                "asset": owner,
                "window_end": end,
                "chunks": [{"msg_id": c.msg_id, "samples": chunk_samples(c)} for c in chunks],
            }
            key = self.quarantine.put(
                "unwritable_window",
                reason,
                json.dumps(body, separators=(",", ":")).encode(),
                topic="",
                client_id="n/a",
                received_at=self.clock.now(),
            )
            return key, 0 if late_files is None else late_files

        try:
            self.spool.write_window(owner, end, set_aside)
        except Exception as exc:  # the quarantine itself failed: the window stays pending
            with self._lock:
                self._counts["flush_errors"] += 1
            log.error("window %s/%d could not be quarantined either: %s", owner, end, exc)

    def _write_files(self, jobs: list[WindowJob]) -> list[tuple[str | None, int] | Exception]:
        """Render each window's file and store them together (one sync for all, where the
        store can); queue each written file for the archive. A window that fails keeps its
        exception and stays pending; the others are written. A late flush none of whose
        messages fits the window's sensors writes no file (key None): they are set aside."""
        outcomes: list[tuple[str | None, int] | Exception] = []
        files: list[tuple[int, str, bytes, int]] = []
        excess: dict[int, list[Chunk]] = {}
        unwritten: list[int] = []
        for i, job in enumerate(jobs):
            try:
                key, late_files, body, values, extra = self._render_window(job)
            except Exception as exc:  # this window only: quarantined by the caller
                outcomes.append(exc)
                continue
            outcomes.append((key, late_files))
            if key is None:
                unwritten.append(i)
            else:
                files.append((i, key, body, values))
            if extra:
                excess[i] = extra
        for i in unwritten:
            error = self._set_aside_excess(jobs[i], excess[i])
            if error is not None:
                outcomes[i] = error
        if isinstance(self.store, BatchPutObjectStore):
            errors = self.store.put_many([(key, body) for _, key, body, _ in files])
        else:
            errors = [_put(self.store, key, body) for _, key, body, _ in files]
        for (i, _key, body, values), error in zip(files, errors, strict=True):
            if error is None and i in excess:  # stored: now set the rest aside, or retry
                error = self._set_aside_excess(jobs[i], excess[i])
            if error is not None:
                outcomes[i] = error
                continue
            if self.archive:  # the file itself: the archive reads what the scheduler reads
                job = jobs[i]
                site, asset = self.config.sites.split(job.asset)
                late = outcomes[i][1]  # type: ignore[index]
                self.spool.archive_add(  # type: ignore[attr-defined]
                    site, asset, job.window_end, late, values, body, self.clock.now()
                )
        return outcomes

    def _set_aside_excess(self, job: WindowJob, chunks: list[Chunk]) -> Exception | None:
        """Quarantine the messages that did not fit the window's files (``too_many_sensors``)
        in one object; the error if that failed (the window stays pending, retried)."""
        owner, end, limit = job.asset, job.window_end, self.config.max_sensors
        if job.late_files is None:
            error = (
                f"window {owner}/{end}: {len(chunks)} message(s) would take its input file "
                f"past {limit:,} sensors (L4E: at most 3,000 sensors per dataset); their "
                "readings are kept here, the file has the sensors that came first"
            )
        else:
            error = (
                f"window {owner}/{end}: {len(chunks)} late message(s) would take its input "
                f"files past {limit:,} sensors together (its first file and late files, which "
                "the scheduler merges; L4E: at most 3,000 sensors per dataset); their "
                "readings are kept here, the files have the sensors that came first"
            )
        body = {
            "asset": owner,
            "window_end": end,
            "chunks": [{"msg_id": c.msg_id, "samples": chunk_samples(c)} for c in chunks],
        }
        try:
            self.quarantine.put(
                "too_many_sensors",
                error,
                json.dumps(body, separators=(",", ":")).encode(),
                topic="",
                client_id="n/a",
                received_at=self.clock.now(),
            )
        except Exception as exc:  # judged by the caller: StorageError is retried
            return exc
        log.warning("%s", error)
        return None

    def _render_window(self, job: WindowJob) -> tuple[str | None, int, bytes, int, list[Chunk]]:
        """The window's next file: its key, the late-file count after it, its bytes, how
        many values it holds, and the chunks left out of it (past ``max_sensors``).

        ``max_sensors`` bounds the window's files together, since the scheduler merges them
        (l4e-contracts §1.4 counts sensors per dataset, §4 Choice 2): a late file takes the
        sensors the earlier ones have plus what still fits. When nothing fits the key is
        None and no file is written (a header-only file holds no sensor)."""
        owner, end, chunks, late_files = job.asset, job.window_end, job.chunks, job.late_files
        site, asset = self.config.sites.split(owner)
        prefix = self.config.sites.prefix(self.config.prefix, site)
        extend = False
        taken: set[str] = set()
        if late_files is not None:
            taken = self._window_sensors(asset, prefix, end, late_files, chunks)
        before = late_files or 0
        if late_files is None:
            key = self.config.naming.format(asset, datetime.fromtimestamp(end, UTC), prefix)
            late_files = 0
        elif late_files >= self.config.upload_frequency_s - 1:
            # Every name inside the window is taken: extend the last late file.
            key = self._late_key(asset, prefix, end, late_files)
            with contextlib.suppress(NotFoundError):  # removed by hand: rows remake it
                # the file's own rows first: its sensors keep their place in it
                chunks = [*parse_csv(self.store.get(key), owner, end), *chunks]
                extend = True
        else:
            late_files += 1
            key = self._late_key(asset, prefix, end, late_files)
        limit = self.config.max_sensors
        if not extend and not any(c.samples for c in chunks):
            joined = join_fragments([c.body for c in chunks])
            if (
                joined is not None
                and joined[2] <= limit
                and (not taken or len(taken | chunk_sensors(chunks[0])) <= limit)
            ):
                body, rows, columns = joined
                return key, late_files, body, rows * columns, []
        chunks, excess = within_sensor_limit(chunks, limit, taken)
        if not chunks:
            return None, before, b"", 0, excess
        merged = merge_rows(chunks)
        return key, late_files, render_rows(merged), sum(map(len, merged.values())), excess

    def _window_sensors(
        self, asset: str, prefix: str, end: int, late_files: int, chunks: list[Chunk]
    ) -> set[str]:
        """Sensors of the window's stored files (its first file, then its *late_files*
        late files) as far as the decision on *chunks* needs them: reading stops once
        every sensor of *chunks* is among them (the usual late readings, of sensors the
        first file has, cost one read), since then no chunk adds a sensor. A file removed
        by hand counts for nothing."""
        wanted = set().union(*map(chunk_sensors, chunks))
        first = self.config.naming.format(asset, datetime.fromtimestamp(end, UTC), prefix)
        keys = [first, *(self._late_key(asset, prefix, end, k) for k in range(1, late_files + 1))]
        taken: set[str] = set()
        for key in keys:
            with contextlib.suppress(NotFoundError):
                taken.update(file_sensors(self.store.get(key)))
            if wanted <= taken:
                break
        return taken

    def _late_key(self, asset: str, prefix: str, end: int, k: int) -> str:
        return self.config.naming.format(asset, datetime.fromtimestamp(end - k, UTC), prefix)

    # ---- observability ------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
        by_reason = dict(sorted(self.quarantine.counts.items()))
        return {
            "accepted": counts.get("accepted", 0),
            "readings": counts.get("readings", 0),
            "duplicates": counts.get("duplicates", 0),
            "id_conflicts": counts.get("id_conflicts", 0),
            "late": counts.get("late", 0),
            "quarantined": sum(by_reason.values()),
            "quarantined_by_reason": by_reason,
            "files_written": counts.get("files_written", 0),
            "flush_errors": counts.get("flush_errors", 0),
            "pending_windows": len(self.spool.pending_windows()),
        }

    def close(self) -> None:
        self.spool.close()


def _unexpected(exc: Exception) -> tuple[str, str]:
    """Reason and text for errors the wire decoder lets through."""
    if isinstance(exc, RecursionError):
        return "bad_json", "payload is not JSON: nested too deeply"
    if isinstance(exc, OverflowError):
        return "out_of_range", f"a value is out of the double range: {exc}"
    return "bad_payload", f"{type(exc).__name__}: {exc}"


def _sensor_count(message: Readings, limit: int) -> int:
    """The distinct sensors of *message*; counted only when its cells could pass *limit*."""
    if message.columns is not None:
        return len(message.columns)
    cells = sum(len(values) for _, values in message.rows)
    if cells <= limit:
        return cells  # no more distinct sensors than cells
    return len({name for _, values in message.rows for name in values})


def _order_key(message: Readings) -> str:
    """Sortable message id: merge order for rows sharing a timestamp."""
    return f"{message.sender}:{message.seq:020d}"


def render_csv(chunks: Iterable[Chunk]) -> bytes:
    """``Timestamp`` first, then the sensors sorted; one row per timestamp, in time order."""
    return render_rows(merge_rows(chunks))


def _put(store: ObjectStore, key: str, body: bytes) -> Exception | None:
    try:
        store.put(key, body)
    except Exception as exc:  # judged by the caller: StorageError is retried
        return exc
    return None
