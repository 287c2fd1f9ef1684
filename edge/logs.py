"""Structured logs: one JSON object per line on stderr, for journald and log shippers."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class LineEvery:
    """Counts what a log line reports and says when the next line is due: at most one per
    *interval_s*, with the count since the last one. A device or a hostile client repeating
    one fault must show in the log without a line per event."""

    def __init__(
        self, interval_s: float = 60.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self._monotonic = monotonic
        self._unlogged = 0
        self._logged_at: float | None = None

    def add(self, count: int = 1) -> int:
        """Count *count* more; the count to log now (all since the last line), or 0 while a
        line went out less than *interval_s* ago."""
        self._unlogged += count
        now = self._monotonic()
        if self._logged_at is not None and now - self._logged_at < self.interval_s:
            return 0
        due, self._unlogged, self._logged_at = self._unlogged, 0, now
        return due


class OncePerReason:
    """The reasons already logged, so a stream of the same bad input is logged once per
    kind; past *limit* reasons it forgets them all, so junk cannot grow it without bound."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._said: set[str] = set()

    def first(self, reason: str) -> bool:
        """Whether *reason* is new (then it is remembered)."""
        if reason in self._said:
            return False
        if len(self._said) >= self.limit:
            self._said.clear()
        self._said.add(reason)
        return True
