"""A raw paho client for tests that act as an outsider: any device, any credential, or none.

It records what the broker says (CONNACK reason, SUBACK codes, disconnects) and every
message it receives, so a test can assert what a client could and could not do.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt


class RawClient:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        protocol: int = mqtt.MQTTv311,
        connect: bool = True,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.messages: list[tuple[str, bytes]] = []
        self.connect_reason: str | None = None
        self.disconnects = 0
        self._cond = threading.Condition()
        self._suback: dict[int, list[Any]] = {}
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"raw-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        if connect:
            self.start()

    def start(self) -> RawClient:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self.wait(lambda: self.connect_reason is not None, "CONNACK")
        if not self.accepted:
            self.close()  # paho would keep retrying a refused connection
        return self

    @property
    def accepted(self) -> bool:
        return self.connect_reason == "Success"

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._cond:
            self.connect_reason = str(reason)
            self._cond.notify_all()

    def _on_disconnect(self, *_args: Any) -> None:
        with self._cond:
            self.disconnects += 1
            self._cond.notify_all()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((message.topic, bytes(message.payload)))
            self._cond.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        with self._cond:
            self._suback[mid] = list(codes)
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float | None = None) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout or self.timeout):
                raise AssertionError(f"timed out waiting for {what}")

    def subscribe(self, filters: Sequence[str], qos: int = 1) -> list[bool]:
        """Subscribe and return, per filter, whether the broker granted it."""
        _rc, mid = self.client.subscribe([(f, qos) for f in filters])
        self.wait(lambda: mid in self._suback, f"SUBACK for {list(filters)}")
        return [not code.is_failure for code in self._suback[mid]]

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 5.0) -> bool:
        """Publish; True once the broker acknowledged it (QoS 1), False otherwise."""
        info = self.client.publish(topic, payload, qos=qos)
        if qos == 0:
            return info.rc == mqtt.MQTT_ERR_SUCCESS
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def received(self, topic: str) -> list[bytes]:
        with self._cond:
            return [payload for t, payload in self.messages if t == topic]

    def wait_for_message(self, topic: str, timeout: float | None = None) -> bytes:
        self.wait(lambda: any(t == topic for t, _ in self.messages), topic, timeout)
        return self.received(topic)[0]

    def quiet(self, seconds: float) -> None:
        """Let in-flight deliveries arrive before asserting that something did not."""
        time.sleep(seconds)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
