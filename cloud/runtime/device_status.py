"""The local stack's listener for agent status documents (``dt/plantwatch/+/+/status``).

Each valid document is kept in the StateStore (:mod:`cloud.devices.health`), where the
dashboard and the CLI read it; a malformed one is quarantined with its reason
(``quarantine/status_<reason>/``) and counted, never dropped silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_url import guard_callbacks, parse_broker_url, stop_client
from cloud.batcher.quarantine import Quarantine
from cloud.devices.health import record
from cloud.ports import ObjectStore, StateStore
from edge.clock import Clock
from edge.errors import PlantwatchError, WireFormatError
from edge.wire import STATUS_FILTER, decode_status

log = logging.getLogger("plantwatch.devices")


class DeviceStatusListener:
    """Subscribes to every agent's status topic and records what arrives."""

    def __init__(
        self,
        broker_url: str,
        state: StateStore,
        quarantine_store: ObjectStore,
        clock: Clock,
        *,
        quarantine_prefix: str = "quarantine/",
        client_id: str = "plantwatch-devices",
    ) -> None:
        self.address = parse_broker_url(broker_url)
        self._state = state
        self._clock = clock
        self.quarantine = Quarantine(quarantine_store, quarantine_prefix)
        self.counts: Counter[str] = Counter()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.address.apply(self._client)
        self._client.on_connect = lambda client, *_a: client.subscribe(STATUS_FILTER, qos=1)
        self._client.on_subscribe = lambda *_a: self._subscribed.set()
        self._client.on_message = self._on_message
        guard_callbacks(self._client, self.counts, log, "device status")

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            status = decode_status(message.payload, message.topic)
        except WireFormatError as exc:
            self.counts["rejected"] += 1
            log.warning("status on %s quarantined: %s", message.topic, exc)
            self.quarantine.put(
                f"status_{exc.reason}",
                str(exc),
                message.payload,
                topic=message.topic,
                client_id="n/a",
                received_at=self._clock.now(),
            )
            return
        # wall time on purpose: liveness is about processes, not plant time
        record(self._state, status, wall_now=time.time(), clock_now=self._clock.now())
        self.counts["recorded"] += 1

    def start(self, timeout: float = 10.0) -> None:
        self._client.connect(self.address.host, self.address.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise PlantwatchError(f"device status: no subscription on {self.address.url}")

    def stop(self) -> None:
        stop_client(self._client)
