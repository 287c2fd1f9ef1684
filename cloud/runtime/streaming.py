"""Streaming mode for the local stack: score every reading as it arrives.

A paho subscription feeds :class:`~cloud.inference.streaming.StreamingScorer`; result lines
land in the scheduler's layout under ``stream/`` (one object per upload window, rewritten as
lines arrive), where the results feeder picks them up on its next poll. Detectors therefore
see anomalies within a poll interval of the reading instead of after the window closes.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_url import guard_callbacks, no_delay, parse_broker_url
from cloud.inference.model import Model
from cloud.inference.streaming import StreamingScorer, WindowedObjectSink
from cloud.ports import ObjectStore
from edge.errors import PlantwatchError
from edge.wire import TELEMETRY_FILTER

log = logging.getLogger("plantwatch.streaming")

STREAM_PREFIX = "stream/"


class StreamingRunner:
    """Owns the subscription; scoring happens on paho's network thread, one message at a
    time, so the scorer's per-asset state needs no lock."""

    def __init__(
        self,
        broker_url: str,
        model: Model,
        store: ObjectStore,
        *,
        frequency_s: int = 300,
        debounce_rows: int = 1,
        client_id: str = "plantwatch-streaming",
    ) -> None:
        self.address = parse_broker_url(broker_url)
        self.scorer = StreamingScorer(
            model,
            WindowedObjectSink(store, STREAM_PREFIX, frequency_s),
            debounce_rows=debounce_rows,
        )
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.address.apply(self._client)
        no_delay(self._client)
        self._subscribed = threading.Event()
        self.counts: Counter[str] = Counter()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_a: self._subscribed.set()
        self._client.on_message = self._on_message
        guard_callbacks(self._client, self.counts, log, "streaming")

    def _on_connect(self, client: mqtt.Client, *_args: object) -> None:
        client.subscribe(TELEMETRY_FILTER, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            self.scorer.handle(message.payload)
        except Exception:  # one bad message must not stop the stream; it is logged
            log.exception("streaming: scoring a message failed")

    def start(self, timeout: float = 10.0) -> None:
        self._client.connect(self.address.host, self.address.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise PlantwatchError(f"streaming: no subscription on {self.address.url}")

    def stop(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
