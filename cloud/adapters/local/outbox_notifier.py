"""Alerts to the console and to an ``alerts.jsonl`` outbox, the local stand-in for SNS."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TextIO

from cloud.ports import Notification
from edge.clock import Clock, SystemClock
from edge.errors import StorageError
from edge.files import private_file


class OutboxNotifier:
    """Appends one JSON line per notification (fsynced: an alert shown is an alert kept).

    A notification whose ``alert_id`` attribute is already in the file for the same channel
    and target is not written again: a sender that crashed after sending and before noting
    it sent retries safely, so an alert is never lost and never doubled.

    A write that fails (a full disk, or a path that is a directory or not writable) is a
    ``StorageError``, so the detector outbox retries the alert until the file can be
    written. Text UTF-8 cannot hold (a lone surrogate from a ``\\ud800`` JSON escape) is
    written as its JSON escape, so such an alert goes out rather than failing every time.
    """

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
        self._sent = self._already_sent()

    def _already_sent(self) -> set[tuple[str, str, str]]:
        sent: set[tuple[str, str, str]] = set()
        if not self.path.exists():
            return sent
        with open(self.path, "rb+") as fh:  # a line torn by a crash must not swallow the next
            if fh.seek(0, os.SEEK_END):
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                    alert_id = record["attributes"]["alert_id"]
                    sent.add((str(alert_id), str(record["channel"]), str(record["target"])))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line or a record without an id
        return sent

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
        alert_id = notification.attributes.get("alert_id")
        identity = (str(alert_id), notification.channel, notification.target)
        with self._lock:
            if alert_id is not None and identity in self._sent:
                return
            try:
                with open(self.path, "a", encoding="utf-8", errors="backslashreplace") as fh:
                    fh.write(line)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise write_error(self.path, exc) from exc
            if alert_id is not None:
                self._sent.add(identity)
        if self._console is not None:
            self._console.write(
                f"[{notification.channel}] {notification.subject}\n{notification.body}\n"
            )


def write_error(path: Path, error: OSError) -> StorageError:
    """Every failed append is retried. A full disk or an I/O error may pass; a path that is
    a directory, not writable or on a read-only file system is the deployment's to fix, as
    a missing SNS topic or permission is on AWS (:mod:`cloud.adapters.aws.errors`), and
    once it is fixed the same alert must still go out rather than be a dead letter."""
    return StorageError(
        f"alerts file {path}: cannot append ({type(error).__name__}: {error.strerror}); "
        "the alert is kept and retried until the file can be written"
    )
