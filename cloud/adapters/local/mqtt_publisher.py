"""Publisher port over paho-mqtt: detector actions and republish rules reach the broker."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_url import parse_broker_url
from edge.errors import PlantwatchError


class MqttPublisher:
    """QoS 1 publishes wait for the PUBACK, so a returned call is a delivered message."""

    def __init__(self, url: str, client_id: str, *, timeout: float = 10.0) -> None:
        address = parse_broker_url(url)
        self._timeout = timeout
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if address.tls:
            self._client.tls_set()
        connected = threading.Event()
        self._client.on_connect = lambda *_a, **_k: connected.set()
        self._client.connect(address.host, address.port, keepalive=30)
        self._client.loop_start()
        if not connected.wait(timeout):
            self.close()
            raise PlantwatchError(f"{url}: could not connect within {timeout:.0f} s")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        info = self._client.publish(topic, payload, qos=qos)
        if qos:
            info.wait_for_publish(self._timeout)
            if not info.is_published():
                raise PlantwatchError(f"publish to {topic!r} not acknowledged")

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
