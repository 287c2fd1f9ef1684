"""AWS's per-thing limits: 20 requests per second and 10 in flight."""

from __future__ import annotations

from cloud.shadow.limits import ThingLimiter
from edge.clock import ManualClock


def test_eleventh_request_in_flight_is_refused_until_one_finishes():
    limiter = ThingLimiter(ManualClock())
    assert all(limiter.acquire("pump") for _ in range(10))
    assert not limiter.acquire("pump")
    assert limiter.acquire("other"), "limits are per thing"
    limiter.release("pump")
    assert limiter.acquire("pump")


def test_twenty_first_request_in_one_second_is_refused_then_the_window_slides():
    clock = ManualClock()
    limiter = ThingLimiter(clock)
    for _ in range(20):
        assert limiter.acquire("pump")
        limiter.release("pump")
    assert not limiter.acquire("pump")
    clock.advance(1.0)
    assert limiter.acquire("pump")
