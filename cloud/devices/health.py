"""What each edge agent last said about itself, and whether it still says anything.

An agent publishes its status on every connect and every ``interval_s`` seconds; the broker
publishes its last will (``offline``, ``connection lost``) when the link drops without a
DISCONNECT, and an agent that stops cleanly says ``offline`` itself. A device can also go
quiet with its connection still open (a hung process, a half-open link): it is *silent*
once no status has come for :data:`SILENT_AFTER_INTERVALS` intervals, so it shows within
one interval of the status it missed.

Liveness is judged on wall-clock seconds on purpose: it is about connections and processes,
not plant time, and the demo's accelerated clock must not make a healthy agent look silent.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Final

from cloud.ports import StateStore
from edge.wire import DeviceStatus

STATUS_NS: Final = "device-status"
"""One document per agent, keyed ``<site>/<sender>``."""
SILENT_AFTER_INTERVALS: Final = 1.5
HEALTH_STATES: Final = ("online", "silent", "offline")
_COUNTERS: Final = ("queue_depth", "queue_bytes", "sent", "dropped", "refused", "connects")


def device_key(site: str, sender: str) -> str:
    return f"{site}/{sender}"


def record(store: StateStore, status: DeviceStatus, *, wall_now: float, clock_now: float) -> None:
    """Keep *status* as the agent's latest; an ``offline`` notice (the last will carries no
    counters) changes the state and keeps the figures the agent last reported."""
    key = device_key(status.site, status.sender)
    doc: dict[str, Any] = dict(store.get(STATUS_NS, key) or {})
    fresh = asdict(status)
    fresh["assets"] = list(status.assets)
    if status.state == "offline":
        for name in (*_COUNTERS, "oldest_age_s", "last_error", "protocol", "ts_ms"):
            if name in doc:
                fresh[name] = doc[name]
        doc["offline_since"] = wall_now
    else:
        doc["last_online"] = wall_now
        doc.pop("offline_since", None)
        fresh["reason"] = None
    doc.update(fresh)
    doc.setdefault("first_seen", wall_now)
    doc["last_seen"] = wall_now
    doc["received_clock"] = clock_now
    doc["messages"] = int(doc.get("messages", 0)) + 1
    store.put(STATUS_NS, key, doc)


def judge(doc: dict[str, Any], wall_now: float) -> dict[str, Any]:
    """*doc* with ``health`` (online, silent or offline), ``age_s`` and ``silent_after_s``."""
    interval = float(doc.get("interval_s") or 5.0)
    silent_after = SILENT_AFTER_INTERVALS * interval
    age = max(0.0, wall_now - float(doc.get("last_seen", 0.0)))
    if doc.get("state") == "offline":
        health = "offline"
    elif age > silent_after:
        health = "silent"
    else:
        health = "online"
    return {**doc, "health": health, "age_s": round(age, 3), "silent_after_s": silent_after}


def devices(store: StateStore, wall_now: float) -> list[dict[str, Any]]:
    """Every agent that has ever reported, judged at *wall_now*, by site and sender."""
    return [judge(doc, wall_now) for _key, doc in store.items(STATUS_NS)]
