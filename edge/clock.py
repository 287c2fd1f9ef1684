"""Injected time, so the demo and tests run accelerated and get real-time results."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Every component reads time from a clock, never from ``time`` directly."""

    def now(self) -> float:
        """Seconds since the epoch, UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait *seconds* of this clock's time."""
        ...

    def monotonic(self) -> float:
        """Seconds of this clock's time from an arbitrary origin, never stepped.

        ``now`` follows the wall clock, which NTP or ``date -s`` can step by hours; what has
        queued "for an hour" must be measured on a clock that only runs.
        """
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic()


class SimulatedClock:
    """Time that runs *speed* times faster than the wall clock, from *start*.

    Shared by processes of one run by passing ``start``, ``speed`` and ``anchor`` (the wall
    time that corresponds to ``start``), so every component agrees on "now".
    """

    def __init__(self, start: float, speed: float = 1.0, anchor: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self.anchor = time.time() if anchor is None else anchor

    def now(self) -> float:
        return self.start + (time.time() - self.anchor) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def monotonic(self) -> float:
        return time.monotonic() * self.speed


class ManualClock:
    """Time that moves only when a test calls :meth:`advance`; ``sleep`` advances it.

    :meth:`step` moves the wall time alone, as an NTP step does; the monotonic time runs
    only with :meth:`advance`, :meth:`sleep` and a forward :meth:`set`.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._elapsed = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self._elapsed += seconds

    def set(self, when: float) -> None:
        """Jump to *when* exactly (a replay moving to a timer's expiry, with no float drift)."""
        with self._lock:
            self._elapsed += max(0.0, when - self._now)
            self._now = when

    def step(self, seconds: float) -> None:
        """Step the wall time by *seconds* (either way) while no time passes."""
        with self._lock:
            self._now += seconds

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
