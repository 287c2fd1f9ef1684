"""Device health: the latest status per agent, silence after 1.5 intervals, offline notices
that keep the figures the agent last reported."""

from __future__ import annotations

from cloud.adapters.local.memory import InMemoryStateStore
from cloud.devices.health import devices, judge, record
from edge.wire import DeviceStatus


def status(**changes: object) -> DeviceStatus:
    base = {"site": "s1", "sender": "gw", "state": "online", "interval_s": 4.0}
    base.update(changes)
    return DeviceStatus(**base)  # type: ignore[arg-type]


def test_online_until_one_and_a_half_intervals_pass() -> None:
    store = InMemoryStateStore()
    record(store, status(queue_depth=3), wall_now=100.0, clock_now=5.0)
    [doc] = devices(store, 105.9)
    assert (doc["health"], doc["queue_depth"], doc["silent_after_s"]) == ("online", 3, 6.0)
    assert devices(store, 106.1)[0]["health"] == "silent"
    record(store, status(queue_depth=0), wall_now=107.0, clock_now=6.0)
    [doc] = devices(store, 107.5)
    assert doc["health"] == "online" and doc["messages"] == 2 and doc["first_seen"] == 100.0


def test_offline_keeps_the_last_figures_and_says_why() -> None:
    store = InMemoryStateStore()
    record(store, status(queue_depth=9, dropped=2, protocol="5"), wall_now=10.0, clock_now=0.0)
    record(store, status(state="offline", reason="connection lost"), wall_now=12.0, clock_now=0.0)
    doc = judge(store.get("device-status", "s1/gw"), 12.5)
    assert (doc["health"], doc["reason"]) == ("offline", "connection lost")
    assert (doc["queue_depth"], doc["dropped"], doc["protocol"]) == (9, 2, "5")
    assert doc["offline_since"] == 12.0 and doc["last_online"] == 10.0
    record(store, status(), wall_now=20.0, clock_now=0.0)
    doc = judge(store.get("device-status", "s1/gw"), 20.0)
    assert doc["health"] == "online" and doc["reason"] is None and "offline_since" not in doc
