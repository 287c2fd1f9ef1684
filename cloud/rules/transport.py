"""The rules runner's MQTT client, behind one small interface: paho or awscrt's MQTT 5 client.

Both deliver each QoS 1 message as ``on_message(generation, message)`` (the message has
``topic`` and ``payload``) and leave its PUBACK to ``ack(generation, message)``, which the
runner calls only after the spool commit. Both keep a persistent session, so what arrives
while the runner is down, and what it received but never acknowledged, is redelivered.

Why two: paho parses every packet in Python, one packet per ``select()``, and each manual
``ack()`` wakes its loop through a socket write. awscrt reads, parses and writes PUBACKs in
C on its own event-loop thread and calls Python once per message. Through mosquitto
(``bench ingest --broker mosquitto``, 5.3 kB pump messages) the network thread's CPU per
message measured 38-50 us with paho and 26-33 us with awscrt, in alternating runs; about
two thirds of awscrt's is kernel time (socket reads, epoll, the GIL hand-over). It speaks MQTT 5 only as far as
durable manual acknowledgement goes (``acquire_publish_acknowledgement_control``), and
amqtt 0.12 speaks MQTT 3.1.1 only, so ``client="auto"`` tries an MQTT 5 CONNECT through
awscrt and falls back to paho when the broker refuses it (amqtt answers within
milliseconds with a packet MQTT 5 cannot decode).

Over MQTT 5 both subscribe with "don't send retained": the rules engine acts on a message
when it is published, and IoT Core replays retained messages only to a subscription whose
filter is the topic itself, never to a wildcard one, while a mosquitto subscriber gets every
matching one each time it subscribes (a restart would take old readings in again). MQTT
3.1.1 has no such option and the RETAIN flag cannot tell a replay apart (amqtt sets it on
messages it kept for an offline session too); amqtt as plantwatch runs it replays retained
messages to exact filters only, and the batcher counts any replay as a duplicate.

A packet id acknowledged on a later connection than the one it arrived on could
acknowledge a different message, so each transport counts its connections
(``generation``) and skips such acks: the broker redelivers those messages and the
batcher de-duplicates them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud.adapters.local.mqtt_url import (
    CALLBACK_ERRORS,
    BrokerAddress,
    guard_callbacks,
    stop_client,
)
from edge.errors import ConfigError, PlantwatchError

log = logging.getLogger(__name__)

CLIENTS = ("auto", "paho", "crt")
SESSION_EXPIRY_S = 3600
"""How long the broker keeps a disconnected runner's session (MQTT 5)."""
RECEIVE_MAXIMUM = 1000
"""Unacknowledged QoS 1 messages the broker may have in flight to the runner (MQTT 5;
mosquitto's ``max_inflight_messages`` bounds it too). The runner's inbox still bounds what
it holds; more in flight means fuller batches per spool commit."""

OnMessage = Callable[[int, Any], None]


class Transport(Protocol):
    kind: str
    generation: int
    thread_id: int | None
    """Native id of the thread that runs ``on_message`` (CPU accounting)."""

    @property
    def ready(self) -> bool:
        """Connected and subscribed (as far as the client knows)."""
        ...

    def connect(self, timeout_s: float) -> None: ...

    def ack(self, generation: int, message: Any) -> None: ...

    def close(self) -> None: ...


class PahoTransport:
    """paho-mqtt, MQTT 3.1.1 (clean_session=False) or 5 (session expiry); works with amqtt.

    ``connect`` returns once the broker has acknowledged every subscription, as the awscrt
    transport's does: a message published by another client right after ``start`` could
    otherwise reach the broker before the SUBSCRIBE and go to no one.
    """

    kind = "paho"

    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        subscriptions: Sequence[str],
        on_message: OnMessage,
        counts: Counter[str],
        *,
        protocol: str = "3.1.1",
    ) -> None:
        self.address = address
        self.subscriptions = list(subscriptions)
        self.generation = 0
        self.thread_id: int | None = None
        self._deliver = on_message
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._answered = threading.Event()
        self._refused: list[Any] = []
        self._suback_mid: int | None = None
        self._protocol = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=self._protocol,
            clean_session=False if self._protocol == mqtt.MQTTv311 else None,
            manual_ack=True,
        )
        self.client.max_inflight_messages_set(100)
        address.apply(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        guard_callbacks(self.client, counts, log, "rules runner")

    @property
    def ready(self) -> bool:
        return self._subscribed.is_set()

    def connect(self, timeout_s: float) -> None:
        props = None
        if self._protocol == mqtt.MQTTv5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            self.client.connect(
                self.address.host,
                self.address.port,
                keepalive=30,
                clean_start=False
                if self._protocol == mqtt.MQTTv5
                else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=props,
            )
        except OSError as exc:
            raise PlantwatchError(f"{self.address.url}: cannot connect: {exc}") from exc
        self.client.loop_start()
        if not self._connected.wait(timeout_s):
            self.client.loop_stop()
            raise PlantwatchError(f"{self.address.url}: no CONNACK within {timeout_s:.0f} s")
        if not self._answered.wait(timeout_s):
            stop_client(self.client)
            raise PlantwatchError(f"{self.address.url}: no SUBACK within {timeout_s:.0f} s")
        if self._refused:
            stop_client(self.client)
            raise PlantwatchError(
                f"{self.address.url} refused the rules' subscriptions {self.subscriptions}: "
                f"{[str(code) for code in self._refused]}"
            )

    def ack(self, generation: int, message: mqtt.MQTTMessage) -> None:
        if generation == self.generation:
            self.client.ack(message.mid, message.qos)

    def close(self) -> None:
        stop_client(self.client)

    # paho callbacks (its network thread)
    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object = None
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.error("%s refused the connection: %s", self.address.url, rc)
            return
        self.generation += 1
        self.thread_id = threading.get_native_id()
        if self._protocol == mqtt.MQTTv5:
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
            topics: list[tuple[str, Any]] = [(topic, options) for topic in self.subscriptions]
        else:
            topics = [(topic, 1) for topic in self.subscriptions]
        if topics:
            _rc, self._suback_mid = client.subscribe(topics)
        else:
            self._subscribed.set()
            self._answered.set()
        self._connected.set()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, reason_codes: list[Any], _p: object = None
    ) -> None:
        if mid != self._suback_mid:
            return
        self._refused = [code for code in reason_codes if getattr(code, "is_failure", False)]
        if self._refused:
            log.error("%s refused a subscription: %s", self.address.url, self._refused)
        else:
            self._subscribed.set()
        self._answered.set()

    def _on_disconnect(self, *_args: object) -> None:
        self._connected.clear()
        self._subscribed.clear()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self._deliver(self.generation, msg)


class Delivery:
    """One message from the awscrt client: what the rules read, and its PUBACK handle."""

    __slots__ = ("handle", "payload", "topic")

    def __init__(self, topic: str, payload: bytes, handle: Any) -> None:
        self.topic = topic
        self.payload = payload
        self.handle = handle


class CrtTransport:
    """awscrt's MQTT 5 client: packets and PUBACKs in C; the PUBACK of each QoS 1 message is
    taken under manual control in the publish callback and sent after the spool commit.

    ``REJOIN_ALWAYS`` with a session expiry keeps the broker's session across restarts, as
    paho's clean_session=False does. The client reconnects by itself; each connection
    (re)subscribes, and ``connect`` returns once the first SUBACK is in.
    """

    kind = "crt"

    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        subscriptions: Sequence[str],
        on_message: OnMessage,
        counts: Counter[str],
        *,
        connack_timeout_ms: int = 10_000,
        receive_maximum: int = RECEIVE_MAXIMUM,
    ) -> None:
        from awscrt import io, mqtt5

        self._mqtt5 = mqtt5
        self.address = address
        self.subscriptions = list(subscriptions)
        self.generation = 0
        self.thread_id: int | None = None
        self._deliver = on_message
        self._counts = counts
        self._subscribed = threading.Event()
        self._failed: Exception | None = None
        self._settled = threading.Event()
        self._stopped = threading.Event()
        self._closing = False
        tls = io.ClientTlsContext(io.TlsContextOptions()) if address.tls else None
        self.client = mqtt5.Client(
            mqtt5.ClientOptions(
                host_name=address.host,
                port=address.port,
                tls_ctx=tls,
                connect_options=mqtt5.ConnectPacket(
                    client_id=client_id,
                    keep_alive_interval_sec=30,
                    session_expiry_interval_sec=SESSION_EXPIRY_S,
                    receive_maximum=receive_maximum,
                    username=address.username,
                    password=address.password.encode() if address.password is not None else None,
                ),
                session_behavior=mqtt5.ClientSessionBehaviorType.REJOIN_ALWAYS,
                retry_jitter_mode=mqtt5.ExponentialBackoffJitterMode.FULL,
                min_reconnect_delay_ms=500,
                max_reconnect_delay_ms=2000,
                connack_timeout_ms=connack_timeout_ms,
                on_publish_callback_fn=self._on_publish,
                on_lifecycle_event_connection_success_fn=self._on_success,
                on_lifecycle_event_connection_failure_fn=self._on_failure,
                on_lifecycle_event_disconnection_fn=self._on_disconnection,
                on_lifecycle_event_stopped_fn=lambda _data: self._stopped.set(),
                # the SDK's metrics ride in the CONNECT username, which broker auth reads
                disable_metrics=True,
            )
        )

    @property
    def ready(self) -> bool:
        return self._subscribed.is_set()

    def connect(self, timeout_s: float) -> None:
        self.client.start()
        if not self._settled.wait(timeout_s + 2):  # its own CONNACK timeout comes first
            self.close()
            raise PlantwatchError(f"{self.address.url}: no CONNACK within {timeout_s:.0f} s")
        if self._failed is not None:
            self.close()
            raise PlantwatchError(f"{self.address.url}: MQTT 5 connect failed: {self._failed}")
        if not self._subscribed.wait(timeout_s):
            self.close()
            raise PlantwatchError(f"{self.address.url}: no SUBACK within {timeout_s:.0f} s")

    def ack(self, generation: int, message: Delivery) -> None:
        if generation != self.generation or message.handle is None:
            return
        try:
            self.client.invoke_publish_acknowledgement(message.handle)
        except Exception as exc:  # the connection went; the broker redelivers the message
            log.debug("PUBACK not sent: %s", exc)

    def close(self) -> None:
        self._closing = True
        self.client.stop()
        if not self._stopped.wait(5):
            log.warning("%s: the MQTT 5 client did not report stopping", self.address.url)

    # awscrt callbacks (its event-loop thread)
    def _on_success(self, _data: Any) -> None:
        self.generation += 1
        self.thread_id = threading.get_native_id()
        mqtt5 = self._mqtt5
        packet = mqtt5.SubscribePacket(
            subscriptions=[
                mqtt5.Subscription(
                    f,
                    mqtt5.QoS.AT_LEAST_ONCE,
                    retain_handling_type=mqtt5.RetainHandlingType.DONT_SEND,
                )
                for f in self.subscriptions
            ]
        )
        self.client.subscribe(packet).add_done_callback(self._on_suback)
        self._settled.set()

    def _on_suback(self, future: Any) -> None:
        try:
            suback = future.result()
        except Exception as exc:
            log.error("%s: SUBSCRIBE failed: %s", self.address.url, exc)
            return
        refused = [code for code in suback.reason_codes if int(code) >= 0x80]
        if refused:
            log.error("%s refused a subscription: %s", self.address.url, refused)
            return
        self._subscribed.set()

    def _on_failure(self, data: Any) -> None:
        if not self._settled.is_set():
            self._failed = data.exception
            self._settled.set()
        else:
            log.warning("%s: reconnect failed: %s", self.address.url, data.exception)

    def _on_disconnection(self, data: Any) -> None:
        self._subscribed.clear()
        if self._settled.is_set() and not self._closing:
            log.warning("%s: disconnected: %s", self.address.url, data.exception)

    def _on_publish(self, data: Any) -> None:
        try:
            acquire = data.acquire_publish_acknowledgement_control
            packet = data.publish_packet
            # acquired first, so a failure below leaves the message unacknowledged
            handle = acquire() if acquire is not None else None
            self._deliver(self.generation, Delivery(packet.topic, packet.payload, handle))
        except Exception:
            self._counts[CALLBACK_ERRORS] += 1
            log.exception("rules runner: on_publish raised; the client keeps running")


def speaks_mqtt5(address: BrokerAddress, timeout_s: float) -> bool:
    """Whether the broker answers an MQTT 5 CONNECT in MQTT 5 (a refusal counts as yes).

    The probe has a random client id, a clean start, no credentials and no properties, so it
    cannot touch any session, not even on a broker that maps usernames to client ids. amqtt
    0.12 answers such a CONNECT with a 3.1.1 CONNACK at once; it never answers a CONNECT that
    carries properties (the runner's real one does), so probing saves a CONNACK timeout.
    """
    import uuid

    from awscrt import io, mqtt5

    outcome: dict[str, Any] = {}
    settled, stopped = threading.Event(), threading.Event()

    def failure(data: Any) -> None:
        outcome.setdefault("error", data.exception)
        settled.set()

    def success(_data: Any) -> None:
        outcome.setdefault("error", None)
        settled.set()

    client = mqtt5.Client(
        mqtt5.ClientOptions(
            host_name=address.host,
            port=address.port,
            tls_ctx=io.ClientTlsContext(io.TlsContextOptions()) if address.tls else None,
            connect_options=mqtt5.ConnectPacket(client_id=f"plantwatch-probe-{uuid.uuid4().hex}"),
            session_behavior=mqtt5.ClientSessionBehaviorType.CLEAN,
            connack_timeout_ms=int(1000 * timeout_s),
            on_lifecycle_event_connection_success_fn=success,
            on_lifecycle_event_connection_failure_fn=failure,
            on_lifecycle_event_stopped_fn=lambda _data: stopped.set(),
            disable_metrics=True,
        )
    )
    client.start()
    settled.wait(timeout_s + 1)
    client.stop()
    stopped.wait(5)
    error = outcome.get("error", TimeoutError("no answer"))
    if error is None or "CONNACK_CONNECTION_REFUSED" in repr(error):
        return True
    log.info("%s does not speak MQTT 5 (%s)", address.url, getattr(error, "name", error))
    return False


def check_client(client: str) -> None:
    if client not in CLIENTS:
        raise ConfigError(f"client {client!r}: expected one of {', '.join(CLIENTS)}")
