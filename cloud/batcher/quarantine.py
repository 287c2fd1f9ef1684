"""Rejected messages, kept whole with a machine-readable reason, never dropped.

Each goes to ``<quarantine_prefix><reason>/<yyyy-mm-dd>/<received>-<id>.json``; the body
keeps the original payload (as text when it is UTF-8, else base64) so it can be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import Counter
from datetime import UTC, datetime

from cloud.ports import ObjectStore


class Quarantine:
    """Writes one object per rejected message and counts them per reason."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self._store = store
        self._prefix = prefix
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
        record: dict[str, object] = {
            "reason": reason,
            "error": error,
            "topic": topic,
            "client_id": client_id,
            "received_at": datetime.fromtimestamp(received_at, UTC).isoformat(),
        }
        try:
            record["payload"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            record["payload_base64"] = base64.b64encode(payload).decode("ascii")
        with self._lock:
            self._serial += 1
            serial = self._serial
        at = datetime.fromtimestamp(received_at, UTC)
        digest = hashlib.sha256(payload).hexdigest()[:16]
        key = (
            f"{self._prefix}{reason}/{at:%Y-%m-%d}/"
            f"{at:%Y%m%dT%H%M%S}{at.microsecond:06d}-{serial:08d}-{digest}.json"
        )
        self._store.put(key, json.dumps(record, ensure_ascii=False).encode("utf-8"))
        with self._lock:
            self.counts[reason] += 1
        return key
