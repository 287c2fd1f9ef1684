"""Rejected messages, kept with a machine-readable reason, never dropped.

Each goes to ``<quarantine_prefix><reason>/<yyyy-mm-dd>/<received>-<id>.json``; the body
keeps the original payload (as text when it is UTF-8, else base64) so it can be replayed,
with its size and SHA-256. A payload over the wire contract's limit (IoT Core's 128 KB)
could never be replayed and would let one client fill the disk, so only its first
``keep_bytes`` are kept (``payload_truncated``), with the size and hash of the whole.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import Counter
from datetime import UTC, datetime

from cloud.ports import ObjectStore
from edge.wire import MAX_PAYLOAD_BYTES

KEEP_BYTES = 4096
"""How much of an oversized payload is kept by default."""


class Quarantine:
    """Writes one object per rejected message and counts them per reason."""

    def __init__(self, store: ObjectStore, prefix: str, *, keep_bytes: int = KEEP_BYTES) -> None:
        self._store = store
        self._prefix = prefix
        self._keep_bytes = keep_bytes
        self._lock = threading.Lock()
        self._serial = 0
        self.counts: Counter[str] = Counter()

    def put(
        self,
        reason: str,
        error: str,
        payload: bytes,
        *,
        topic: str,
        client_id: str,
        received_at: float,
    ) -> str:
        """Store the message; returns its key."""
        full_digest = hashlib.sha256(payload).hexdigest()
        record: dict[str, object] = {
            "reason": reason,
            "error": error,
            "topic": topic,
            "client_id": client_id,
            "received_at": datetime.fromtimestamp(received_at, UTC).isoformat(),
            "payload_bytes": len(payload),
            "payload_sha256": full_digest,
        }
        kept = payload
        if len(payload) > MAX_PAYLOAD_BYTES:
            kept = payload[: self._keep_bytes]
            record["payload_truncated"] = True
        text = _utf8_prefix(kept, truncated=kept is not payload)
        if text is not None:
            record["payload"] = text
        else:
            record["payload_base64"] = base64.b64encode(kept).decode("ascii")
        with self._lock:
            self._serial += 1
            serial = self._serial
        at = datetime.fromtimestamp(received_at, UTC)
        key = (
            f"{self._prefix}{reason}/{at:%Y-%m-%d}/"
            f"{at:%Y%m%dT%H%M%S}{at.microsecond:06d}-{serial:08d}-{full_digest[:16]}.json"
        )
        # a lone surrogate (JSON's "\ud800" in a device's text) is written as that escape:
        # strict UTF-8 would raise, and the message would fail its batch instead
        document = json.dumps(record, ensure_ascii=False)
        self._store.put(key, document.encode("utf-8", "backslashreplace"))
        with self._lock:
            self.counts[reason] += 1
        return key


def _utf8_prefix(data: bytes, *, truncated: bool) -> str | None:
    """*data* as text if it is UTF-8; a cut prefix may end inside a character, which is
    dropped (at most 3 bytes) rather than turning the whole prefix into base64."""
    for trim in range(4 if truncated else 1):
        try:
            return data[: len(data) - trim].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None
