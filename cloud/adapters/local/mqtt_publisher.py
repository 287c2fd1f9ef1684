"""Publisher port over paho-mqtt: detector actions and republish rules reach the broker."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_url import guard_callbacks, parse_broker_url, stop_client
from edge.errors import PlantwatchError, RefusedError

log = logging.getLogger(__name__)


class MqttPublisher:
    """QoS 1 publishes wait for the PUBACK, so a returned call is a delivered message."""

    def __init__(self, url: str, client_id: str, *, timeout: float = 10.0) -> None:
        address = parse_broker_url(url)
        self._timeout = timeout
        self.counts: Counter[str] = Counter()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        address.apply(self._client)
        connected = threading.Event()
        self.refused: str | None = None

        def on_connect(
            _c: mqtt.Client, _u: object, _f: object, reason: object, *_p: object
        ) -> None:
            if getattr(reason, "is_failure", False):
                self.refused = str(reason)
            connected.set()

        self._client.on_connect = on_connect
        guard_callbacks(self._client, self.counts, log, f"publisher {client_id}")
        try:
            self._client.connect(address.host, address.port, keepalive=30)
        except OSError as exc:
            raise PlantwatchError(f"{address.url}: cannot connect: {exc}") from exc
        self._client.loop_start()
        if not connected.wait(timeout) or self.refused:
            self.close()
            why = f"refused ({self.refused})" if self.refused else f"no answer in {timeout:.0f} s"
            raise PlantwatchError(f"{address.url}: could not connect: {why}")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Raises ``RefusedError`` for what no broker takes (an empty topic, a wildcard, one
        over MQTT's 65,535 bytes, a QoS other than 0-2): paho refuses it before sending, the
        same every time, so retrying cannot help. A publish not acknowledged is a
        ``PlantwatchError`` (retried)."""
        try:
            info = self._client.publish(topic, payload, qos=qos)
        except ValueError as exc:  # paho's checks of the topic, payload and QoS
            raise RefusedError(
                f"publish to {topic[:64]!r}: the MQTT client refuses it: {exc} Not sent.",
                reason="InvalidPublish",
            ) from exc
        if qos:
            info.wait_for_publish(self._timeout)
            if not info.is_published():
                raise PlantwatchError(f"publish to {topic!r} not acknowledged")

    def close(self) -> None:
        stop_client(self._client)
