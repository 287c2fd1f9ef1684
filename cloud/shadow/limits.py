"""AWS's per-thing shadow limits: 20 requests/s (all shadows summed) and 10 in flight.

Both are spec Choices: AWS also states them per connection; plantwatch counts per thing.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque

from edge.clock import Clock

REQUESTS_PER_S = 20
MAX_IN_FLIGHT = 10


class ThingLimiter:
    """Sliding one-second window and an in-flight counter per thing."""

    def __init__(
        self, clock: Clock, rate: int = REQUESTS_PER_S, in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        self._clock = clock
        self._rate = rate
        self._max_in_flight = in_flight
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def acquire(self, thing: str) -> bool:
        """Admit one request, or return False (the caller answers 429)."""
        now = self._clock.now()
        with self._lock:
            recent = self._recent[thing]
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            if len(recent) >= self._rate or self._in_flight[thing] >= self._max_in_flight:
                return False
            recent.append(now)
            self._in_flight[thing] += 1
            return True

    def release(self, thing: str) -> None:
        with self._lock:
            self._in_flight[thing] -= 1
            if self._in_flight[thing] <= 0:
                del self._in_flight[thing]
                if not self._recent.get(thing):
                    self._recent.pop(thing, None)
