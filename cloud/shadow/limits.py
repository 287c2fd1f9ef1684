"""AWS's per-thing shadow limits: 20 requests/s (all shadows summed) and 10 in flight.

Both are spec Choices: AWS also states them per connection; plantwatch counts per thing.

Memory is bounded: a thing's entry goes once it has nothing in flight and no request in the
last second (swept at most once a second, so the cost is amortised), and at most
``max_things`` things are tracked at once; a new thing beyond that is refused like any
other excess request. Without that, every distinct thing name ever seen kept an entry.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from edge.clock import Clock

REQUESTS_PER_S = 20
MAX_IN_FLIGHT = 10
MAX_THINGS = 10_000
"""Things tracked at once: those with a request in the last second or one in flight."""
WINDOW_S = 1.0


@dataclass(slots=True)
class _Bucket:
    recent: deque[float] = field(default_factory=deque)
    in_flight: int = 0


class ThingLimiter:
    """Sliding one-second window and an in-flight counter per thing."""

    def __init__(
        self,
        clock: Clock,
        rate: int = REQUESTS_PER_S,
        in_flight: int = MAX_IN_FLIGHT,
        max_things: int = MAX_THINGS,
    ) -> None:
        self._clock = clock
        self._rate = rate
        self._max_in_flight = in_flight
        self._max_things = max_things
        self._buckets: dict[str, _Bucket] = {}
        self._swept_at = float("-inf")
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Things tracked right now (the memory the limiter holds)."""
        with self._lock:
            return len(self._buckets)

    def acquire(self, thing: str) -> bool:
        """Admit one request, or return False (the caller answers 429)."""
        now = self._clock.now()
        with self._lock:
            if now - self._swept_at >= WINDOW_S:
                self._sweep(now)
            bucket = self._buckets.get(thing)
            if bucket is None:
                if len(self._buckets) >= self._max_things:
                    self._sweep(now)
                    if len(self._buckets) >= self._max_things:
                        return False
                bucket = self._buckets[thing] = _Bucket()
            recent = bucket.recent
            while recent and recent[0] <= now - WINDOW_S:
                recent.popleft()
            if len(recent) >= self._rate or bucket.in_flight >= self._max_in_flight:
                return False
            recent.append(now)
            bucket.in_flight += 1
            return True

    def release(self, thing: str) -> None:
        with self._lock:
            bucket = self._buckets.get(thing)
            if bucket is not None and bucket.in_flight > 0:
                bucket.in_flight -= 1

    def _sweep(self, now: float) -> None:
        """Forget things with nothing in flight and no request inside the window."""
        self._swept_at = now
        idle = [
            thing
            for thing, bucket in self._buckets.items()
            if bucket.in_flight == 0 and (not bucket.recent or bucket.recent[-1] <= now - WINDOW_S)
        ]
        for thing in idle:
            del self._buckets[thing]
