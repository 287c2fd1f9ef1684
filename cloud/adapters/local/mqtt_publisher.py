"""Publisher port over paho-mqtt: detector actions and republish rules reach the broker.

While the link is down (paho reconnects on its own), a publish is not handed to paho: a
QoS 0 one is dropped, as QoS 0 is at most once, but counted (``counts["dropped_qos0"]``)
and logged, at most one warning line a minute with the drops since the last one, as the
edge agent reports the readings its queue drops; a QoS 1 one raises ``PlantwatchError``,
the transient error its callers retry (the rules runner leaves the message it came from
unacknowledged, the detector outbox keeps the action). Before, paho dropped a QoS 0
publish without a word and a QoS 1 one raised a bare ``RuntimeError``, which the rules
runner took for a failed action and acknowledged.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_url import guard_callbacks, parse_broker_url, stop_client
from edge.errors import PlantwatchError, RefusedError
from edge.logs import LineEvery

log = logging.getLogger(__name__)

DROP_LOG_INTERVAL_S = 60.0
"""At most one warning line about dropped QoS 0 publishes per this many seconds."""


class MqttPublisher:
    """QoS 1 publishes wait for the PUBACK, so a returned call is a delivered message."""

    def __init__(self, url: str, client_id: str, *, timeout: float = 10.0) -> None:
        address = parse_broker_url(url)
        self._timeout = timeout
        self.counts: Counter[str] = Counter()
        self._drops_lock = threading.Lock()
        self._drop_lines = LineEvery(DROP_LOG_INTERVAL_S)
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
        same every time, so retrying cannot help. A QoS 1 publish not acknowledged, or made
        while the link is down, is a ``PlantwatchError`` (retried); a QoS 0 publish made
        while the link is down is dropped, counted and logged (module docstring)."""
        if not self._client.is_connected() and qos in (0, 1, 2):
            self._not_sent(topic, qos, "not connected")
            return
        try:
            info = self._client.publish(topic, payload, qos=qos)
        except ValueError as exc:  # paho's checks of the topic, payload and QoS
            raise RefusedError(
                f"publish to {topic[:64]!r}: the MQTT client refuses it: {exc} Not sent.",
                reason="InvalidPublish",
            ) from exc
        if info.rc != mqtt.MQTT_ERR_SUCCESS:  # the link dropped since the check above
            # a QoS 1 message stays with paho, sent again when it reconnects (at least once)
            self._not_sent(topic, qos, f"not connected ({mqtt.error_string(info.rc)})")
            return
        if qos:
            try:
                info.wait_for_publish(self._timeout)
            except (RuntimeError, ValueError) as exc:  # paho lost the link meanwhile
                raise PlantwatchError(f"publish to {topic[:64]!r} not acknowledged: {exc}") from exc
            if not info.is_published():
                raise PlantwatchError(f"publish to {topic[:64]!r} not acknowledged")

    def _not_sent(self, topic: str, qos: int, why: str) -> None:
        """A publish that did not go out: raise for QoS 1 (the caller retries), count and
        log a QoS 0 one as dropped."""
        if qos:
            raise PlantwatchError(
                f"publish to {topic[:64]!r}: {why}; not sent, try again (QoS {qos})"
            )
        with self._drops_lock:
            self.counts["dropped_qos0"] += 1
            dropped = self._drop_lines.add()
        if not dropped:
            return
        log.warning(
            "%d QoS 0 publish(es) dropped: %s (last to %r); %d dropped in all",
            dropped,
            why,
            topic[:64],
            self.counts["dropped_qos0"],
        )

    def close(self) -> None:
        stop_client(self._client)
