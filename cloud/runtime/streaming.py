"""Streaming mode for the local stack: score every reading as it arrives.

A paho subscription feeds :class:`~cloud.inference.streaming.StreamingScorer`; result lines
land in the scheduler's layout under ``stream/`` (one object per upload window, rewritten as
lines arrive; *on_stored* hears of each write, which is how the local stack feeds its
detectors at once). Detectors therefore see anomalies within milliseconds of the reading
instead of after the window closes.

Nothing acknowledged is lost. A message is acknowledged (PUBACK, paho ``manual_ack``) only
once its result lines are stored, or, when they cannot be (the store fails, or scoring
raises), once the message itself is quarantined with the reason
(``quarantine/stream_store_failed/``, ``quarantine/stream_scoring_failed/``) and counted.
If even the quarantine cannot be written, the message stays unacknowledged: the session is
persistent, so the broker delivers it again when the runner reconnects. Messages the wire
contract or the clock-skew check refuses are counted here and acknowledged; the batcher,
subscribed to the same topics, keeps those in its quarantine.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import paho.mqtt.client as mqtt

from cloud import wire_decoder
from cloud.adapters.local.mqtt_url import guard_callbacks, no_delay, parse_broker_url, stop_client
from cloud.batcher.quarantine import Quarantine
from cloud.inference.model import Model
from cloud.inference.streaming import StoredLines, StreamingScorer, WindowedObjectSink
from cloud.l4e.sites import SiteLayout
from cloud.ports import ObjectStore
from edge.clock import Clock
from edge.errors import PlantwatchError, StorageError
from edge.wire import TELEMETRY_FILTER

log = logging.getLogger("plantwatch.streaming")

STREAM_PREFIX = "stream/"
QUARANTINE_PREFIX = "quarantine/"


class StreamingRunner:
    """Owns the subscription; scoring happens on paho's network thread, one message at a
    time, so the scorer's per-asset state needs no lock."""

    def __init__(
        self,
        broker_url: str,
        model: Model,
        store: ObjectStore,
        clock: Clock,
        *,
        frequency_s: int = 300,
        debounce_rows: int = 1,
        client_id: str = "plantwatch-streaming",
        ignore_retained: bool = False,
        sites: SiteLayout | None = None,
        max_skew_s: float | None = None,
        on_stored: StoredLines | None = None,
    ) -> None:
        self.address = parse_broker_url(broker_url)
        self.clock = clock
        self.ignore_retained = ignore_retained
        """Acknowledge and count (``counts["ignored_retained"]``), never score, a delivery
        flagged retained: IoT Core's rules, where the scorer stands, never see a retained
        reading again (it reaches a subscription only when the filter equals the topic),
        while mosquitto replays it to every matching wildcard subscription each time one
        is made. MQTT 3.1.1 flags exactly those replays (MQTT-3.3.1-9), so this is right
        for mosquitto; amqtt also flags messages it kept for an offline session, so leave
        it off there."""
        skew = {} if max_skew_s is None else {"max_skew_s": max_skew_s}
        self.scorer = StreamingScorer(
            model,
            WindowedObjectSink(store, STREAM_PREFIX, frequency_s, sites=sites, on_stored=on_stored),
            debounce_rows=debounce_rows,
            clock=clock,
            sites=sites,
            decode=wire_decoder.decode,
            **skew,
        )
        self.quarantine = Quarantine(store, QUARANTINE_PREFIX)
        self.failures: Counter[str] = Counter()
        """Messages whose results could not be stored, by reason (each is quarantined)."""
        self.unacknowledged = 0
        """Messages neither stored nor quarantined: left for the broker to deliver again."""
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            manual_ack=True,
        )
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
        if self.ignore_retained and message.retain:
            self.counts["ignored_retained"] += 1
            self._client.ack(message.mid, message.qos)
            return
        try:
            self.scorer.handle(message.payload, message.topic)
        except StorageError as exc:
            if not self._set_aside(message, "stream_store_failed", exc):
                return
        except Exception as exc:  # one bad message must not stop the stream; it is kept
            if not self._set_aside(message, "stream_scoring_failed", exc):
                return
        self._client.ack(message.mid, message.qos)

    def _set_aside(self, message: mqtt.MQTTMessage, reason: str, error: Exception) -> bool:
        """Quarantine a message whose results were not stored; False if that failed too."""
        text = str(error) if isinstance(error, PlantwatchError) else repr(error)
        log.error("streaming: %s on %s: %s", reason, message.topic, text)
        try:
            self.quarantine.put(
                reason,
                text,
                message.payload,
                topic=message.topic,
                client_id="n/a",
                received_at=self.clock.now(),
            )
        except Exception:
            self.unacknowledged += 1
            log.exception(
                "streaming: message on %s not quarantined; left unacknowledged", message.topic
            )
            return False
        self.failures[reason] += 1
        return True

    @property
    def stats(self) -> dict[str, Any]:
        scored = self.scorer.stats
        return {
            "messages": scored.messages,
            "readings": scored.readings,
            "duplicates": scored.duplicates,
            "late": scored.late,
            "no_model_sensors": scored.no_model_sensors,
            "refused": scored.quarantined,
            "refused_by_reason": dict(sorted(scored.quarantine_reasons.items())),
            "quarantined_by_reason": dict(sorted(self.failures.items())),
            "unacknowledged": self.unacknowledged,
        }

    def start(self, timeout: float = 10.0) -> None:
        self._client.connect(self.address.host, self.address.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise PlantwatchError(f"streaming: no subscription on {self.address.url}")

    def stop(self) -> None:
        stop_client(self._client)
