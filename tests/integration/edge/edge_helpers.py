"""Test-only peers of the agent. ShadowResponder answers get/update on ``$aws/things/<thing>/shadow/...``.

A few dozen lines of the shadow contract (docs: shadow-contracts §1-§4) over paho, so the
agent's tests exercise the real AWS protocol without the product's shadow service: deep
merge with null deletes, versions with 409 on mismatch, delta after every update.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.wire import TELEMETRY_FILTER, decode

PREFIX = "$aws/things/"


def shadow_agent(url: str, tmp_path: Path, *assets: str, **config: Any) -> Agent:
    """An agent (not started) for the shadow tests: MQTT 3.1.1 and quick reconnects, so a
    test that drops the connection does not wait; *config* overrides any setting."""
    settings: dict[str, Any] = {
        "site": "plant1",
        "sender": "gw-1",
        "broker_url": url,
        "queue_path": str(tmp_path / "queue.db"),
        "assets": assets,
        "protocol": "3.1.1",
        "backoff_min_s": 0.05,
        "backoff_max_s": 0.5,
    }
    return Agent(AgentConfig(**{**settings, **config}), SystemClock())


def merge(stored: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(stored)
    for key, value in update.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
            if not out[key]:
                del out[key]
        else:
            out[key] = value
    return out


def delta(desired: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in desired.items():
        if key not in reported:
            out[key] = value
        elif isinstance(value, dict) and isinstance(reported[key], dict):
            nested = delta(value, reported[key])
            if nested:
                out[key] = nested
        elif value != reported[key]:
            out[key] = value
    return out


class ShadowResponder:
    def __init__(self, host: str, port: int) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.updates: list[tuple[str, dict[str, Any]]] = []
        self.conflict_next: dict[str, Any] | None = None
        """Desired state that 'another writer' sets just before the agent's next report,
        whose delta is lost: the report gets 409 and the agent must GET to catch up."""
        self.conflicts = 0
        self._lock = threading.Lock()
        self._client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"responder-{time.time_ns()}"
        )
        ready = threading.Event()
        self._client.on_connect = lambda c, *_: c.subscribe(
            [(f"{PREFIX}+/shadow/get", 1), (f"{PREFIX}+/shadow/update", 1)]
        )
        self._client.on_subscribe = lambda *_: ready.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("shadow responder did not subscribe")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def set_desired(self, thing: str, desired: dict[str, Any]) -> None:
        """What a detector or ``plantwatch shadow set`` does: an update from the cloud side."""
        self._update(thing, {"state": {"desired": desired}}, publish=True)

    def reported(self, thing: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.docs.get(thing, {}).get("reported", {}))

    def _publish(self, topic: str, doc: dict[str, Any]) -> None:
        self._client.publish(topic, json.dumps(doc), qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        thing, operation = msg.topic[len(PREFIX) :].split("/shadow/")
        try:
            request = json.loads(msg.payload or b"{}")
        except ValueError:
            request = {}
        if operation == "get":
            base = f"{PREFIX}{thing}/shadow/get"
            with self._lock:
                doc = self.docs.get(thing)
                if doc is None:
                    reply = {"code": 404, "message": f"No shadow exists with name: '{thing}'"}
                    topic = f"{base}/rejected"
                else:
                    state = {k: doc[k] for k in ("desired", "reported") if doc.get(k)}
                    d = delta(doc.get("desired", {}), doc.get("reported", {}))
                    if d:
                        state["delta"] = d
                    reply = {
                        "state": state,
                        "metadata": {},
                        "version": doc["version"],
                        "timestamp": int(time.time()),
                    }
                    topic = f"{base}/accepted"
            if "clientToken" in request:
                reply["clientToken"] = request["clientToken"]
            self._publish(topic, reply)
        elif operation == "update":
            self._update(thing, request, publish=True)

    def _update(self, thing: str, request: dict[str, Any], publish: bool) -> None:
        base = f"{PREFIX}{thing}/shadow/update"
        token = {"clientToken": request["clientToken"]} if "clientToken" in request else {}
        with self._lock:
            doc = self.docs.setdefault(thing, {"desired": {}, "reported": {}, "version": 0})
            state_in = request.get("state") or {}
            if self.conflict_next is not None and "reported" in state_in and "version" in request:
                doc["desired"] = merge(doc["desired"], self.conflict_next)
                doc["version"] += 1
                self.conflict_next = None
                self.conflicts += 1
            if "version" in request and request["version"] != doc["version"]:
                self._publish(
                    f"{base}/rejected", {"code": 409, "message": "Version conflict", **token}
                )
                return
            state = request.get("state") or {}
            for section in ("desired", "reported"):
                if section in state:
                    doc[section] = merge(doc[section], state[section] or {})
            doc["version"] += 1
            self.updates.append((thing, state))
            version = doc["version"]
            d = delta(doc["desired"], doc["reported"])
        now = int(time.time())
        self._publish(
            f"{base}/accepted",
            {"state": state, "metadata": {}, "version": version, "timestamp": now, **token},
        )
        if d:
            self._publish(
                f"{base}/delta",
                {"state": d, "metadata": {}, "version": version, "timestamp": now, **token},
            )


class Receiver:
    """The receiving side: a paho subscriber that decodes telemetry and counts duplicates.

    Readings are keyed by (asset, ts) and messages by msg_id, so a redelivered message is
    counted as a duplicate rather than as new data.
    """

    def __init__(self, host: str, port: int, client_id: str = "receiver") -> None:
        self.readings: dict[tuple[str, int], dict[str, Any]] = {}
        self.msg_ids: dict[str, int] = {}
        self.messages = 0
        self.duplicate_messages = 0
        self.changed_redeliveries = 0
        self.out_of_order = 0
        """First deliveries whose oldest sample is older than one already received."""
        self.arrivals: list[float] = []
        self._last_ts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
        )
        self._subscribed = threading.Event()
        self.subscriptions = 0
        """SUBACKs so far: one per connection the receiver has subscribed on."""
        self._client.on_connect = lambda c, *_: c.subscribe(TELEMETRY_FILTER, 1)
        self._client.on_subscribe = lambda *_: self._on_subscribe()
        self._client.on_disconnect = lambda *_: self._subscribed.clear()
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(0.05, 0.5)
        self._client.connect(host, port, keepalive=5)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("receiver did not subscribe")

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        message = decode(msg.payload)
        with self._lock:
            self.messages += 1
            if message.msg_id in self.msg_ids:
                self.duplicate_messages += 1
                if self.msg_ids[message.msg_id] != len(message.samples):
                    self.changed_redeliveries += 1
            else:
                first = message.samples[0].ts_ms
                if first < self._last_ts.get(message.asset, -1):
                    self.out_of_order += 1
                self._last_ts[message.asset] = message.samples[-1].ts_ms
            self.arrivals.append(time.monotonic())
            self.msg_ids[message.msg_id] = len(message.samples)
            for sample in message.samples:
                self.readings[(message.asset, sample.ts_ms)] = dict(sample.values)

    def _on_subscribe(self) -> None:
        with self._lock:
            self.subscriptions += 1
        self._subscribed.set()

    def wait_subscribed(self, timeout: float, after: int | None = None) -> bool:
        """After a broker restart: True once the receiver has reconnected and subscribed.
        With *after* (:attr:`subscriptions` before the broker went away), only a SUBACK
        since counts: until paho has seen the old connection close, its flag is still set."""
        if after is None:
            return self._subscribed.wait(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.subscriptions > after and self._subscribed.is_set():
                return True
            time.sleep(0.02)
        return False

    def settle(self, at_least: int, timeout: float = 10.0, quiet_s: float = 0.3) -> None:
        """Wait until at least *at_least* readings are in and none came for *quiet_s*:
        what a broker has acknowledged is delivered before a test kills it (a fixed sleep
        was too short on a loaded machine, and the broker's loss counted as the agent's)."""
        deadline = time.monotonic() + timeout
        last, since = self.count(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.count()
            if now != last:
                last, since = now, time.monotonic()
            elif now >= at_least and time.monotonic() - since >= quiet_s:
                return

    def count(self) -> int:
        with self._lock:
            return len(self.readings)

    def wait_for(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                return True
            time.sleep(0.05)
        return self.count() >= n

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
