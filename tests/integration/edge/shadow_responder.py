"""Test-only shadow responder: answers get/update on ``$aws/things/<thing>/shadow/...``.

A few dozen lines of the shadow contract (docs: shadow-contracts §1-§4) over paho, so the
agent's tests exercise the real AWS protocol without the product's shadow service: deep
merge with null deletes, versions with 409 on mismatch, delta after every update.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import paho.mqtt.client as paho

PREFIX = "$aws/things/"


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
        self._client.loop_stop()
        self._client.disconnect()

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
