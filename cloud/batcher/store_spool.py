"""The batcher's spool kept in the object store, for stateless runtimes (the Lambda batcher).

Layout under ``<prefix>`` (default ``spool/``, outside the input prefix):

- ``pending/<asset>/<window_end>/<batch>.json``: the chunks one batch accepted for one
  window; one object per batch, so a flush running elsewhere never races an append.
- ``seen/<asset>/<window_end>.json``: message ids and digests accepted for that window (the
  dedup memory). Read-modify-write is safe because each asset arrives on one Kinesis shard
  (partition key = asset), whose batches Lambda processes one at a time.
- ``written/<asset>/<window_end>.json``: the window's file exists; how many late files it has
  and which pending objects are already in them, so a flush interrupted between writing
  the CSV and deleting its pending objects does not write those rows twice.

Adds are staged in memory and made durable by :meth:`commit`, which the handler calls
before it reports the batch done; :meth:`begin` drops cached state between invocations.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from cloud.batcher.spool import Chunk, Entry, WindowJob, WindowsWriter, WindowWriter
from cloud.ports import ObjectStore
from edge.errors import NotFoundError

log = logging.getLogger(__name__)


class ObjectStoreSpool:
    def __init__(self, store: ObjectStore, prefix: str = "spool/") -> None:
        self.store = store
        self.prefix = prefix
        self._lock = threading.Lock()
        self.begin()

    def begin(self) -> None:
        """Forget cached state: another invocation may have changed the store."""
        self._seen: dict[tuple[str, int], dict[str, Any]] = {}
        self._written: dict[tuple[str, int], dict[str, Any] | None] = {}
        self._staged: dict[tuple[str, int], list[Chunk]] = {}
        self._dirty_seen: set[tuple[str, int]] = set()

    # ---- keys -----------------------------------------------------------------------------

    def _pending_dir(self, asset: str, end: int) -> str:
        return f"{self.prefix}pending/{asset}/{end}/"

    def _seen_key(self, asset: str, end: int) -> str:
        return f"{self.prefix}seen/{asset}/{end}.json"

    def _written_key(self, asset: str, end: int) -> str:
        return f"{self.prefix}written/{asset}/{end}.json"

    def _load(self, key: str) -> Any:
        try:
            return json.loads(self.store.get(key))
        except NotFoundError:
            return None

    def _seen_for(self, asset: str, end: int) -> dict[str, Any]:
        if (asset, end) not in self._seen:
            doc = self._load(self._seen_key(asset, end)) or {"ids": {}, "last_ts_ms": 0}
            self._seen[(asset, end)] = doc
        return self._seen[(asset, end)]

    def _written_for(self, asset: str, end: int) -> dict[str, Any] | None:
        if (asset, end) not in self._written:
            self._written[(asset, end)] = self._load(self._written_key(asset, end))
        return self._written[(asset, end)]

    # ---- SpoolPort ------------------------------------------------------------------------

    def add(self, msg_key: str, digest: str, last_ts_ms: int, chunks: Iterable[Chunk]) -> str:
        chunks = list(chunks)
        with self._lock:
            seen = [self._seen_for(c.asset, c.window_end) for c in chunks]
            digests = seen[0]["ids"].get(msg_key, [])
            if digest in digests:
                return "duplicate"
            outcome = "conflict" if digests else "added"
            for chunk, doc in zip(chunks, seen, strict=True):
                doc["ids"].setdefault(msg_key, []).append(digest)
                doc["last_ts_ms"] = max(doc["last_ts_ms"], last_ts_ms)
                self._dirty_seen.add((chunk.asset, chunk.window_end))
                self._staged.setdefault((chunk.asset, chunk.window_end), []).append(chunk)
            return outcome

    def add_many(self, entries: Sequence[Entry]) -> list[str]:
        """Staged like :meth:`add`: durable at :meth:`commit`."""
        return [self.add(e.msg_key, e.digest, e.last_ts_ms, e.chunks) for e in entries]

    def commit(self) -> None:
        """Make the staged adds durable: pending chunks first, then the dedup memory (a crash
        in between re-adds the same rows, which the CSV merges by timestamp)."""
        with self._lock:
            batch = uuid.uuid4().hex
            for (asset, end), chunks in sorted(self._staged.items()):
                body = [_chunk_document(c) for c in chunks]
                key = f"{self._pending_dir(asset, end)}{batch}.json"
                self.store.put(key, json.dumps(body, separators=(",", ":")).encode())
            for asset, end in sorted(self._dirty_seen):
                doc = self._seen[(asset, end)]
                self.store.put(self._seen_key(asset, end), json.dumps(doc).encode())
            self._staged.clear()
            self._dirty_seen.clear()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Adds are staged until :meth:`commit` anyway."""
        yield

    def is_flushed(self, asset: str, window_end: int) -> bool:
        with self._lock:
            return self._written_for(asset, window_end) is not None

    def pending_windows(self) -> list[tuple[str, int]]:
        found: set[tuple[str, int]] = set()
        for key in self.store.list(f"{self.prefix}pending/"):
            parts = key[len(self.prefix) :].split("/")
            if len(parts) == 4 and parts[2].isdigit():
                found.add((parts[1], int(parts[2])))
        return sorted(found)

    def write_window(self, asset: str, window_end: int, write: WindowWriter) -> str | None:
        with self._lock:
            self._written.pop((asset, window_end), None)
            written = self._written_for(asset, window_end)
        consumed = set(written["consumed"]) if written else set()
        chunks: list[Chunk] = []
        for key in self.store.list(self._pending_dir(asset, window_end)):
            if key in consumed:
                self.store.delete(key)  # already in a file; the delete was interrupted
                continue
            try:
                raw = self.store.get(key)
            except NotFoundError:
                continue
            try:
                chunks.extend([_chunk(asset, window_end, c, key) for c in json.loads(raw)])
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
                self._set_aside(key, raw, exc)
        if not chunks:
            return None
        file_key, late_files = write(
            chunks, None if written is None else int(written["late_files"])
        )
        keys = sorted({c.id for c in chunks})
        doc = {"late_files": late_files, "consumed": keys}
        self.store.put(self._written_key(asset, window_end), json.dumps(doc).encode())
        for key in keys:
            self.store.delete(key)
        with self._lock:
            self._written[(asset, window_end)] = doc
        return file_key

    def _set_aside(self, key: str, raw: bytes, error: Exception) -> None:
        """A pending object that does not decode (written by something else, or damaged)
        moves to ``<prefix>corrupt/``, kept as it is, so it stops blocking its window."""
        target = f"{self.prefix}corrupt/{key[len(self.prefix) :]}"
        log.error(
            "%s: not a spool document (%s: %s); moved to %s",
            key,
            type(error).__name__,
            error,
            target,
        )
        self.store.put(target, raw)
        self.store.delete(key)

    def write_windows(
        self, windows: Sequence[tuple[str, int]], write: WindowsWriter
    ) -> dict[tuple[str, int], str | Exception | None]:
        """One window after the other: an object store has no transaction to share."""
        results: dict[tuple[str, int], str | Exception | None] = {}
        for asset, window_end in windows:
            try:
                key = self.write_window(asset, window_end, _one_of(write, asset, window_end))
            except _Refused as refused:
                results[(asset, window_end)] = refused.error
                continue
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
                # a damaged ``written/`` record: this window only, not every one after it
                results[(asset, window_end)] = exc
                continue
            if key is not None:
                results[(asset, window_end)] = key
        return results

    def forget_before(self, ts_ms: int, window_end: int) -> None:
        """Nothing to do here: a lifecycle rule on the bucket expires ``seen/`` and
        ``written/`` after ``max_skew`` plus a day (listing them every flush would cost
        more than the data)."""
        return None

    def close(self) -> None:
        return None


def _chunk_document(chunk: Chunk) -> dict[str, Any]:
    """A pending chunk as stored: its fragment (``body``), or its samples."""
    if chunk.body:
        return {"msg_id": chunk.msg_id, "body": chunk.body}
    return {"msg_id": chunk.msg_id, "samples": chunk.samples}


def _chunk(asset: str, window_end: int, doc: dict[str, Any], key: str) -> Chunk:
    samples = [(int(t), v) for t, v in doc.get("samples", [])]
    return Chunk(asset, window_end, doc["msg_id"], samples, key, doc.get("body", ""))


class _Refused(Exception):
    """A window the writer could not write; carries its error out of :meth:`write_window`
    (which then forgets nothing)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _one_of(write: WindowsWriter, asset: str, window_end: int) -> WindowWriter:
    def write_one(chunks: list[Chunk], late_files: int | None) -> tuple[str | None, int]:
        [outcome] = write([WindowJob(asset, window_end, chunks, late_files)])
        if isinstance(outcome, Exception):
            raise _Refused(outcome)
        return outcome

    return write_one
