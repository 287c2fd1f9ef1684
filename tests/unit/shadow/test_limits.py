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


def test_idle_things_are_forgotten_so_distinct_names_cannot_grow_memory():
    clock = ManualClock()
    limiter = ThingLimiter(clock)
    for i in range(10_000):
        assert limiter.acquire(f"thing-{i}")
        limiter.release(f"thing-{i}")
    clock.advance(1.0)
    assert limiter.acquire("pump")
    assert len(limiter) == 1, "every idle thing of the last second was forgotten"


def test_a_thing_with_a_request_in_flight_is_kept_and_still_limited():
    clock = ManualClock()
    limiter = ThingLimiter(clock)
    assert all(limiter.acquire("busy") for _ in range(10))
    clock.advance(5.0)
    assert limiter.acquire("other")
    assert len(limiter) == 2
    assert not limiter.acquire("busy"), "its in-flight count survived the sweep"


def test_at_most_max_things_are_tracked_within_one_second():
    clock = ManualClock()
    limiter = ThingLimiter(clock, max_things=100)
    admitted = sum(limiter.acquire(f"t{i}") for i in range(1_000))
    assert admitted == 100
    assert len(limiter) == 100
    clock.advance(1.0)
    for i in range(100):
        limiter.release(f"t{i}")
    assert limiter.acquire("late"), "room again once the window has passed"
