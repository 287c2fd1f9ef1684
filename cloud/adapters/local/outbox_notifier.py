"""Alerts to the console and to an ``alerts.jsonl`` outbox, the local stand-in for SNS."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TextIO

from cloud.ports import Notification
from edge.clock import Clock, SystemClock
from edge.files import private_file


class OutboxNotifier:
    """Appends one JSON line per notification (fsynced: an alert shown is an alert kept)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        console: TextIO | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.path = Path(path)
        self._clock = clock or SystemClock()
        private_file(self.path)
        self._console = console
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        record = {
            "sent_at": self._clock.now(),
            "channel": notification.channel,
            "target": notification.target,
            "subject": notification.subject,
            "body": notification.body,
            "attributes": dict(notification.attributes),
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if self._console is not None:
            self._console.write(
                f"[{notification.channel}] {notification.subject}\n{notification.body}\n"
            )
