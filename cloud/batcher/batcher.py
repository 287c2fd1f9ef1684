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
``(sender, seq)`` wins, so the output does not depend on arrival order.

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
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.batcher.config import BatcherConfig
from cloud.batcher.quarantine import Quarantine
from cloud.batcher.spool import Chunk, Spool, SpoolPort
from cloud.l4e.naming import format_row_timestamp, window_end
from cloud.ports import ObjectStore
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

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATE_MERGE_ID = ""
"""Sorts before every message id, so rows read back from a written file give way to newer
messages on a conflicting sensor."""


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
        decode: Callable[[bytes | str], wire.Telemetry] = wire.decode,
        archive: bool = False,
    ) -> None:
        """*decode* parses a payload by the wire contract; the local runtime passes
        :func:`cloud.wire_decoder.decode` (msgspec, compiled), which a Lambda bundle, pure
        Python, cannot carry."""
        self.decode = decode
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
        self, message: wire.Telemetry, raw: bytes, topic: str, client_id: str
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
        self, message: wire.Telemetry, raw: bytes, topic: str, client_id: str
    ) -> None:
        cfg = self.config
        try:
            site, asset = wire.parse_telemetry_topic(topic)
        except WireFormatError as exc:
            self._reject(exc.reason, str(exc), raw, topic, client_id)
            return
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
        now = self.clock.now()
        stamps = [sample.ts_ms for sample in message.samples]
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
        samples = [(s.ts_ms, s.values) for s in message.samples]
        owner = cfg.sites.key(message.site, message.asset)
        msg_key = f"{message.site}/{message.asset}/{message.msg_id}"
        freq = cfg.upload_frequency_s
        first_end = int(window_end(earliest / 1000, freq))
        by_window: dict[int, list[tuple[int, Mapping[str, float | None]]]] = {}
        if first_end == int(window_end(latest / 1000, freq)):
            by_window[first_end] = samples  # one window: the usual case
        else:
            for ts_ms, values in samples:
                end = int(window_end(ts_ms / 1000, freq))
                by_window.setdefault(end, []).append((ts_ms, values))
        chunks = [
            Chunk(owner, end, _order_key(message), rows, body=_dumps(rows))
            for end, rows in sorted(by_window.items())
        ]
        # Serialised once: the spool stores these bodies and the digest is taken over them.
        digest = hashlib.sha256("\n".join(c.body for c in chunks).encode()).hexdigest()[:32]
        with self._lock:
            outcome = self.spool.add(msg_key, digest, max(ts for ts, _ in samples), chunks)
            if outcome == "duplicate":
                self._counts["duplicates"] += 1
                return
            self._counts["accepted"] += 1
            self._counts["readings"] += len(samples)
            if outcome == "conflict":
                self._counts["id_conflicts"] += 1
            for end, rows in by_window.items():
                if self.spool.is_flushed(owner, end):
                    self._counts["late"] += len(rows)

    def _reject(self, reason: str, error: str, raw: bytes, topic: str, client_id: str) -> None:
        self.quarantine.put(
            reason, error, raw, topic=topic, client_id=client_id, received_at=self.clock.now()
        )

    def batch(self) -> AbstractContextManager[None]:
        """Accept many messages with one durable commit; acknowledge them after it ends."""
        return self.spool.batch()

    # ---- output -------------------------------------------------------------------------

    def flush_due(self) -> list[str]:
        """Write every window whose end + grace has passed; returns the keys written."""
        now = self.clock.now()
        keys = self._flush(lambda end: end + self.config.grace_s <= now)
        if now - self._pruned_at >= self.config.upload_frequency_s:
            self._pruned_at = now
            horizon = now - self.config.max_skew_s - self.config.upload_frequency_s
            self.spool.forget_before(int(horizon * 1000), int(horizon))
        return keys

    def flush_all(self) -> list[str]:
        """Write every pending window now (shutdown): an open window's file is written early,
        and readings arriving for it later go to a late file."""
        return self._flush(lambda _end: True)

    def _flush(self, due: Any) -> list[str]:
        written: list[str] = []
        with self._flush_lock:
            for owner, end in self.spool.pending_windows():
                if not due(end):
                    continue
                try:
                    key = self._write_window(owner, end)
                except StorageError as exc:  # the store may come back: retried next flush
                    with self._lock:
                        self._counts["flush_errors"] += 1
                    log.warning("window %s/%d not written yet (will retry): %s", owner, end, exc)
                    continue
                except Exception as exc:  # this window can never be written: set it aside
                    self._quarantine_window(owner, end, exc)
                    continue
                if key is not None:
                    written.append(key)
        return written

    def _quarantine_window(self, owner: str, end: int, error: Exception) -> None:
        """Move a window's pending rows to quarantine, so it stops blocking every flush."""
        reason = f"{type(error).__name__}: {error}"
        log.error("window %s/%d cannot be written; quarantined: %s", owner, end, reason)

        def set_aside(chunks: list[Chunk], late_files: int | None) -> tuple[str, int]:
            body = {
                "asset": owner,
                "window_end": end,
                "chunks": [{"msg_id": c.msg_id, "samples": c.samples} for c in chunks],
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

    def _write_window(self, owner: str, end: int) -> str | None:
        site, asset = self.config.sites.split(owner)
        prefix = self.config.sites.prefix(self.config.prefix, site)

        def write(chunks: list[Chunk], late_files: int | None) -> tuple[str, int]:
            if late_files is None:
                key = self.config.naming.format(asset, datetime.fromtimestamp(end, UTC), prefix)
                late_files = 0
            elif late_files >= self.config.upload_frequency_s - 1:
                # Every name inside the window is taken: extend the last late file.
                key = self._late_key(asset, prefix, end, late_files)
                with contextlib.suppress(NotFoundError):  # removed by hand: rows remake it
                    chunks = [*chunks, *parse_csv(self.store.get(key), owner, end)]
            else:
                late_files += 1
                key = self._late_key(asset, prefix, end, late_files)
            rows = merge_rows(chunks)
            body = render_rows(rows)
            self.store.put(key, body)
            if self.archive:  # the file itself: the archive reads what the scheduler reads
                values = sum(map(len, rows.values()))
                self.spool.archive_add(  # type: ignore[attr-defined]
                    site, asset, end, late_files, values, body, self.clock.now()
                )
            return key, late_files

        key = self.spool.write_window(owner, end, write)
        if key is not None:
            with self._lock:
                self._counts["files_written"] += 1
        return key

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


def _dumps(rows: list[tuple[int, Mapping[str, float | None]]]) -> str:
    return json.dumps(rows, separators=(",", ":"), allow_nan=False)


def _order_key(message: wire.Telemetry) -> str:
    """Sortable message id: merge order for rows sharing a timestamp."""
    return f"{message.sender}:{message.seq:020d}"


Rows = dict[int, dict[str, float | None]]
"""One file's content: ``{ts_ms: {sensor: value or None}}``."""


def render_csv(chunks: Iterable[Chunk]) -> bytes:
    """``Timestamp`` first, then the sensors sorted; one row per timestamp, in time order."""
    return render_rows(merge_rows(chunks))


def merge_rows(chunks: Iterable[Chunk]) -> Rows:
    """One row per timestamp; on a sensor two messages both give, the larger message id
    wins, and a value wins over a null."""
    rows: Rows = {}
    for chunk in sorted(chunks, key=lambda c: c.msg_id):
        for ts_ms, values in chunk.samples:
            row = rows.setdefault(ts_ms, {})
            for name, value in values.items():
                if value is not None or name not in row:
                    row[name] = value
    return rows


def render_rows(rows: Rows) -> bytes:
    """The CSV of :func:`merge_rows`' output."""
    sensors = sorted({name for row in rows.values() for name in row})
    lines = [",".join(["Timestamp", *sensors])]
    for ts_ms in sorted(rows):
        row = rows[ts_ms]
        stamp = format_row_timestamp(_EPOCH + timedelta(milliseconds=ts_ms))
        lines.append(",".join([stamp, *(_cell(row.get(name)) for name in sensors)]))
    return ("\n".join(lines) + "\n").encode("ascii")


def _cell(value: float | None) -> str:
    """Shortest round-trip text of the double; whole numbers without ``.0``, so a reading
    reads the same whether it passed through IoT SQL (which turns ``10.0`` into ``10``) or
    not."""
    if value is None:
        return ""
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def parse_csv(body: bytes, asset: str, end: int) -> list[Chunk]:
    """Read back a file written by :func:`render_csv` (used only to extend a late file)."""
    lines = body.decode("ascii").splitlines()
    if not lines:
        return []
    sensors = lines[0].split(",")[1:]
    samples: list[tuple[int, dict[str, float | None]]] = []
    for line in lines[1:]:
        stamp, *cells = line.split(",")
        at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
        ts_ms = (at - _EPOCH) // timedelta(milliseconds=1)
        samples.append((ts_ms, {n: _parse_cell(c) for n, c in zip(sensors, cells, strict=True)}))
    return [Chunk(asset, end, _LATE_MERGE_ID, samples)]


def _parse_cell(text: str) -> float | None:
    if not text:
        return None
    if any(ch in text for ch in ".eEni"):
        return float(text)
    return int(text)
