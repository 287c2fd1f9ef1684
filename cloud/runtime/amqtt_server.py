"""Runs the embedded amqtt broker in its own process, so it gets a core to itself.

With ``--passwd`` and ``--acl`` it enforces the credentials and topic ACL that
``cloud.runtime.broker_auth`` writes for mosquitto too; with ``--max-packet-bytes`` it
closes the connection of a client that sends a larger packet, as mosquitto's
``max_packet_size`` does, before reading the packet's body; with ``--max-payload-bytes``, of
one that publishes a larger payload, as IoT Core does. It also applies IoT Core's
client id and topic limits (iot-core-rules-and-limits §2) that mosquitto has no options
for: client ids, reserved ``$`` topics, topic size and depth. What it holds for one
connection that does not read is bounded (:class:`_Owed`).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import math
import os
import signal
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amqtt.broker import Broker as _AmqttBroker
from amqtt.codecs_amqtt import decode_data_with_length, decode_string, read_or_raise
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.events import BrokerEvents
from amqtt.mqtt import publish, subscribe, unsubscribe
from amqtt.mqtt.connack import IDENTIFIER_REJECTED, NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket, ConnectPayload, ConnectVariableHeader
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.mqtt.packet import (
    CONNACK,
    CONNECT,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
    MQTTFixedHeader,
    MQTTPacket,
)
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.pubcomp import PubcompPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.pubrel import PubrelPacket
from amqtt.mqtt.subscribe import SubscribePacket
from amqtt.mqtt.unsubscribe import UnsubscribePacket
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import INCOMING, OUTGOING, OutgoingApplicationMessage
from amqtt.utils import gen_client_id

from cloud.runtime.broker_auth import SERVICE_SECRET_ENV, AccessControl
from cloud.shadow.document import parse_request_topic
from edge.logs import LineEvery
from edge.wire import (
    MAX_PUBLISHES_PER_S,
    MAX_SUBSCRIPTIONS,
    client_id_problem,
    iot_core_topic_problem,
    split_basic_ingest,
)

log = logging.getLogger("plantwatch.amqtt")
_RESERVED_RETAIN_LINES = LineEvery(60.0)
"""Retained publishes to reserved topics: one log line a minute at most, with the count."""
SUBACK_FAILURE = 0x80
CONNECT_TIMEOUT_S = 10.0
"""A connection must have sent its whole CONNECT this long after it opened (as the shadow
service's REST face drops a client stalled for 10 s); amqtt 0.12.1 waited for good, so a
socket that connected and said nothing held a file descriptor until the client left."""
KEEP_ALIVE_GRACE = 1.5
"""MQTT-3.1.2-24 and IoT Core: no packet for 1.5 x the keep-alive closes the connection."""
KEEP_ALIVE_RANGE_S = (30, 1200)
"""IoT Core: the keep-alive it holds a client to; 0 (MQTT's "none") counts as the top."""
MAX_FILTERS_PER_SUBSCRIBE = 8
"""IoT Core: subscriptions per SUBSCRIBE packet (not adjustable); a 9th closes the connection."""
MAX_SUBSCRIPTIONS_PER_CONNECTION = MAX_SUBSCRIPTIONS
"""IoT Core's default quota, the one the edge agent checks against; a filter past it gets the
SUBACK failure code."""
MAX_INFLIGHT_OUT = 100
"""IoT Core: unacknowledged outbound QoS 1 publishes per client (§3, not adjustable)."""
MAX_OWED_BYTES = 8 * 1024 * 1024
MAX_OWED_MESSAGES = 2_000
"""Payload bytes and messages the broker holds for one connection beyond what it has written:
the messages waiting for the socket or for a free place in the QoS 1 window. Past either,
the oldest QoS 0 messages waiting for that connection are dropped, or with none waiting the
new message (:class:`_Owed`)."""


MAX_UNROUTED_MESSAGES = 100
MAX_UNROUTED_BYTES = 512 * 1024
"""Messages and payload bytes the broker has read from one connection and not yet routed
(:class:`_Unrouted`): past either it stops reading that connection until half of them are
routed. They are one second of IoT Core's per-connection quotas (100 publishes/s,
512 KiB/s)."""
UNROUTED_RECHECK_S = 0.1
"""How often a held connection looks again at its backlog, should no routing wake it."""


@dataclass
class _Tally:
    """A count of messages and of their payload bytes."""

    messages: int = 0
    payload_bytes: int = 0

    def add(self, size: int) -> None:
        self.messages += 1
        self.payload_bytes += size

    def remove(self, size: int) -> None:
        self.messages -= 1
        self.payload_bytes -= size


@dataclass
class _Unrouted(_Tally):
    """What the broker has read from one connection and not yet routed to subscribers.

    amqtt 0.12.1 reads every connection as fast as it can and queues each publish it reads
    in two unbounded queues (the session's ``delivered_message_queue``, then the broker's one
    broadcast queue) until its single broadcast loop routes it. One connection is read at
    about the pace of that loop, but two or more publishing faster than it routes filled the
    queues without a bound, the broker's memory growing with what they held. Here a
    connection past :data:`MAX_UNROUTED_MESSAGES` or :data:`MAX_UNROUTED_BYTES` is not read
    from (:class:`_SilenceBoundReader`) until half of them are routed: TCP then slows its
    publisher and nothing is lost. IoT Core drops a connection's publishes past 100 a
    second and delays its traffic past 512 KiB/s (iot-core-rules-and-limits §3); this sets
    no rate, only the broker's pace, so a connection is slowed only when the broker cannot
    keep up, and by its own backlog only: another connection, the stack's services too,
    waits behind at most this bound of each flooder's messages."""

    routed: asyncio.Event = field(default_factory=asyncio.Event)

    def remove(self, size: int) -> None:
        super().remove(size)
        if self._below(2):
            self.routed.set()

    def _below(self, share: int) -> bool:
        return (
            self.messages < MAX_UNROUTED_MESSAGES // share
            and self.payload_bytes < MAX_UNROUTED_BYTES // share
        )

    async def wait_for_routing(self) -> None:
        """Returns at once under the bound; past it, once half of the backlog is routed."""
        if self._below(1):
            return
        while not self._below(2):
            self.routed.clear()
            try:
                async with asyncio.timeout(UNROUTED_RECHECK_S):
                    await self.routed.wait()
            except TimeoutError:
                continue


def _unrouted(session: Any) -> _Unrouted:
    unrouted: _Unrouted | None = getattr(session, "plantwatch_unrouted", None)
    if unrouted is None:
        unrouted = session.plantwatch_unrouted = _Unrouted()
    return unrouted


class _RoutingQueue(asyncio.Queue[Any]):
    """One of amqtt's queues of publishes read and not yet routed, counting each one
    against the connection it came from (:class:`_Unrouted`). *source* names, for an item,
    that connection's session and the payload's size."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self._source = source
        self._emptied = asyncio.Event()

    def _put(self, item: Any) -> None:
        super()._put(item)
        session, size = self._source(item)
        if session is not None:
            _unrouted(session).add(size)

    def _get(self) -> Any:
        item = super()._get()
        session, size = self._source(item)
        if session is not None:
            _unrouted(session).remove(size)
        if self.empty():
            self._emptied.set()
        return item

    async def drained(self) -> None:
        """Returns once every item put has been taken."""
        while not self.empty():
            self._emptied.clear()
            await self._emptied.wait()


def _broadcast_source(broadcast: dict[str, Any]) -> tuple[Any, int]:
    return broadcast.get("session"), len(broadcast.get("data") or b"")


def _counted_deliveries(session: Any) -> None:
    """Makes *session*'s queue of publishes read from its connection a :class:`_RoutingQueue`,
    keeping what a resumed session had queued."""
    queue = session.delivered_message_queue
    if isinstance(queue, _RoutingQueue):
        return
    counted = _RoutingQueue(lambda message: (session, len(message.data or b"")))
    while not queue.empty():
        counted.put_nowait(queue.get_nowait())
    session.delivered_message_queue = counted


@dataclass
class _Waiting:
    """One QoS 0 message waiting for its turn on a connection's socket: *turn* is set to
    True when it may be written, or to False when it was dropped to make room."""

    size: int
    turn: asyncio.Future[bool]


@dataclass
class _Owed(_Tally):
    """What the broker owes one connection and has not written yet.

    amqtt 0.12.1 starts one delivery task per message and subscriber, which waits for the
    subscriber's socket; for a client that stopped reading, every message to it waited for
    good, each holding its payload, so a hung or hostile subscriber on a busy topic could
    take the broker's memory. Here a connection owed more than :data:`MAX_OWED_BYTES` or
    :data:`MAX_OWED_MESSAGES` loses the oldest QoS 0 messages waiting for it: a monitoring
    client wants the newest readings, and QoS 0 promises at most once. QoS 0 messages wait
    in line (:attr:`waiting`, written one at a time and in order), so the oldest is known and
    its task ends at once, letting go of its payload. A QoS 1 message is never dropped to
    make room: with no QoS 0 message waiting, the new message is dropped instead, as
    mosquitto does past ``max_queued_messages``. QoS 1 messages are also held back while
    :data:`MAX_INFLIGHT_OUT` are unacknowledged, so the redelivery store stays bounded.
    Every drop is counted (:attr:`dropped_total`) and logged with the client id, once a
    minute at most (:attr:`dropped`)."""

    stopped: bool = False
    window_opened: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: LineEvery = field(default_factory=LineEvery)
    dropped_total: int = 0
    waiting: deque[_Waiting] = field(default_factory=deque)
    writing: bool = False
    """A QoS 0 message of this connection is being written."""

    def over(self) -> bool:
        return self.messages > MAX_OWED_MESSAGES or self.payload_bytes > MAX_OWED_BYTES

    def make_room(self) -> int:
        """Drop the oldest waiting QoS 0 messages while over the bound; how many."""
        dropped = 0
        while self.over() and self.waiting:
            oldest = self.waiting.popleft()
            self.remove(oldest.size)
            oldest.turn.set_result(False)
            dropped += 1
        return dropped

    def next_turn(self) -> None:
        """Let the next waiting QoS 0 message be written, if none is being written."""
        if self.writing or not self.waiting:
            return
        self.writing = True
        self.waiting.popleft().turn.set_result(True)

    def release(self) -> None:
        """The connection ended: the waiting messages end unsent, their payloads let go."""
        while self.waiting:
            entry = self.waiting.popleft()
            self.remove(entry.size)
            entry.turn.set_result(False)


@dataclass
class _PublishRate:
    """A connection's publish rate against ``--max-publishes-per-s``: a bucket of one
    second's publishes, refilled at that rate. IoT Core drops a connection's publishes past
    100 a second and keeps the connection: a QoS 0 publish is lost, a QoS 1 one gets no
    PUBACK, so the client sends it again (a device that paces itself, as the edge agent
    does with ``max_publishes_per_s``, never meets it). Drops are counted and logged with
    the client id, once a minute at most."""

    per_s: float
    tokens: float
    at: float
    dropped: LineEvery = field(default_factory=LineEvery)
    dropped_total: int = 0

    def take(self, now: float) -> bool:
        """Whether one more publish fits at *now* (loop time, seconds); counts it if so."""
        self.tokens = min(self.per_s, self.tokens + (now - self.at) * self.per_s)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _who(session: Any) -> str:
    """The client a refusal is about, so the operator knows which device to look at."""
    client_id = getattr(session, "client_id", None)
    return f"client {client_id!r}" if client_id else "a client"


class RedeliveringHandler(BrokerProtocolHandler):
    """Keeps an unacknowledged outgoing QoS 1 message in its session until PUBACK arrives.

    MQTT 3.1.1 section 4.4 (MQTT-4.4.0-1): when a client resumes a persistent session, the
    server must resend every PUBLISH it has not had a PUBACK for, with DUP set. amqtt 0.12.1
    (``ProtocolHandler._handle_qos1_message_flow``) removes the message from
    ``session.inflight_out`` in a ``finally`` that also runs when the connection dies (the
    PUBACK waiter is cancelled by ``stop()``) or after its 5 s PUBACK timeout, so
    ``_retry_deliveries`` on reconnect finds nothing and a SIGKILLed subscriber loses what it
    had received but not yet acknowledged. Here the message goes back into ``inflight_out``
    unless its PUBACK came, and a PUBACK arriving after the timeout removes it. QoS 2 is left
    as amqtt has it: plantwatch publishes and subscribes at QoS 1 only.
    Recheck on any amqtt upgrade: drop this class once amqtt keeps in-flight messages itself.
    """

    async def _handle_qos1_message_flow(self, app_message: Any) -> None:
        session = self.session
        if app_message.direction == INCOMING and await self._acks_when_durable(app_message):
            await self._durable_qos1_flow(app_message)
            return
        try:
            await super()._handle_qos1_message_flow(app_message)
        finally:
            if (
                session is not None
                and app_message.direction == OUTGOING
                and app_message.puback_packet is None
                and app_message.packet_id is not None
            ):
                session.inflight_out[app_message.packet_id] = app_message
            elif session is not None and app_message.direction == OUTGOING:
                _durably_received(session, app_message)
            if app_message.direction == OUTGOING:
                self._owed().window_opened.set()

    def _owed(self) -> _Owed:
        owed: _Owed | None = getattr(self, "_owed_state", None)
        if owed is None:
            owed = self._owed_state = _Owed()
        return owed

    async def mqtt_publish(
        self,
        topic: str,
        data: bytes | bytearray,
        qos: int | None,
        retain: bool,
        ack_timeout: int | None = None,
    ) -> OutgoingApplicationMessage:
        """Delivers a message to this client within the bounds of :class:`_Owed`. The rules
        runner (:func:`_is_rules_engine`) stands in for IoT Core's rules engine, which no
        connection quota limits, and the stack's other services (``--service-client``:
        the streaming scorer, device status, the shadow service) for AWS's own; none is
        bounded: they read and acknowledge everything, and a reading dropped for one of them
        would be lost to it."""
        if _is_rules_engine(self.session) or _is_service(self.session):
            return await super().mqtt_publish(topic, data, qos, retain, ack_timeout)
        owed = self._owed()
        size = len(data or b"")
        if qos in (QOS_1, QOS_2):
            owed.add(size)
            self._count_drops(owed, owed.make_room())
            if owed.over():  # nothing older to drop: the new message goes, as on mosquitto
                owed.remove(size)
                self._count_drops(owed, 1)
                return OutgoingApplicationMessage(None, topic, qos, data, retain)
            try:
                await self._inflight_window(owed)
                return await super().mqtt_publish(topic, data, qos, retain, ack_timeout)
            finally:
                owed.remove(size)
        entry = _Waiting(size, asyncio.get_running_loop().create_future())
        owed.add(size)
        owed.waiting.append(entry)
        self._count_drops(owed, owed.make_room())
        if owed.stopped:
            owed.release()
        owed.next_turn()
        try:
            granted = await entry.turn
        except asyncio.CancelledError:  # the delivery was cancelled: its place is given up
            if entry in owed.waiting:
                owed.waiting.remove(entry)
                owed.remove(size)
            elif entry.turn.done() and not entry.turn.cancelled() and entry.turn.result():
                self._written(owed, size)
            raise
        if not granted:
            return OutgoingApplicationMessage(None, topic, qos, data, retain)
        try:
            return await super().mqtt_publish(topic, data, qos, retain, ack_timeout)
        finally:
            self._written(owed, size)

    @staticmethod
    def _written(owed: _Owed, size: int) -> None:
        """A QoS 0 message's turn on the socket is over: the next waiting one's begins."""
        owed.remove(size)
        owed.writing = False
        owed.next_turn()

    def _count_drops(self, owed: _Owed, count: int) -> None:
        """Count *count* messages dropped for this connection; log the count since the last
        line, once a minute at most, naming the client."""
        if not count:
            return
        owed.dropped_total += count
        unlogged = owed.dropped.add(count)
        if unlogged:
            log.warning(
                "%s does not read what it is sent: %d message%s to it dropped since the last "
                "line, %d in all (oldest QoS 0 first; it is owed %d messages, %d bytes; the "
                "bound is %d, %d)",
                _who(self.session),
                unlogged,
                "" if unlogged == 1 else "s",
                owed.dropped_total,
                owed.messages,
                owed.payload_bytes,
                MAX_OWED_MESSAGES,
                MAX_OWED_BYTES,
            )

    async def _inflight_window(self, owed: _Owed) -> None:
        """Waits while IoT Core's :data:`MAX_INFLIGHT_OUT` QoS 1 messages are unacknowledged.
        Once the connection stops, the message goes on into the session's in-flight store,
        as any undelivered QoS 1 message does, for redelivery when a persistent session
        resumes."""
        session = self.session
        while (
            not owed.stopped
            and session is not None
            and len(session.inflight_out) >= MAX_INFLIGHT_OUT
        ):
            owed.window_opened.clear()
            await owed.window_opened.wait()

    async def _acks_when_durable(self, app_message: Any) -> bool:
        """Whether this device's QoS 1 PUBLISH is acknowledged only once the durable
        subscriber (``--durable-subscriber``, the rules runner) has acknowledged its copy:
        its topic matches one of that subscriber's filters. Until that subscriber has ever
        subscribed, which filters it reads is unknown, so the publish waits for it."""
        session = self.session
        broker = getattr(self, "broker", None)
        if _DURABLE is None or session is None or broker is None:
            return False
        if session.client_id == _DURABLE.client_id:
            return False  # its own publishes (republish actions): it never waits on itself
        if not _DURABLE.subscribed.is_set():
            self._held_tasks().add(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await _DURABLE.subscribed.wait()
            finally:
                self._held_tasks().discard(asyncio.current_task())  # type: ignore[arg-type]
        return broker.durable_subscriber_reads(app_message.topic)

    async def _durable_qos1_flow(self, app_message: Any) -> None:
        """amqtt's incoming QoS 1 flow (route, then PUBACK) with the PUBACK sent only once
        the durable subscriber has PUBACKed its copy (:func:`_durably_received`), i.e. once
        the rules runner has committed it to its spool. A device that disconnects meanwhile
        gets no PUBACK: it keeps the reading and sends it again (:meth:`_stop_waiters`)."""
        session = self.session
        if session is None:
            raise AMQTTError("Session is not initialized.")
        received: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        app_message.data = _Durable(app_message.data, received)
        self._held_tasks().add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await session.delivered_message_queue.put(app_message)
            await received
        finally:
            self._held_tasks().discard(asyncio.current_task())  # type: ignore[arg-type]
        puback = PubackPacket.build(app_message.packet_id)
        await self._send_packet(puback)
        app_message.puback_packet = puback

    def _held_tasks(self) -> set[asyncio.Task[Any]]:
        held: set[asyncio.Task[Any]] | None = getattr(self, "_durable_held", None)
        if held is None:
            held = self._durable_held = set()
        return held

    def _stop_waiters(self) -> None:
        """The connection is ending: publishes still waiting for the durable subscriber
        end unacknowledged (the device resends them), so no task or future outlives it."""
        super()._stop_waiters()
        for task in list(self._held_tasks()):
            task.cancel()
        self._held_tasks().clear()
        owed = self._owed()
        owed.stopped = True
        owed.window_opened.set()
        owed.release()

    async def _retry_deliveries(self) -> None:
        """Resend the session's in-flight messages without waiting for their PUBACKs.

        amqtt 0.12.1's ``ProtocolHandler.start`` awaits ``_retry_deliveries``, which waits up
        to the 5 s PUBACK timeout for every resent message before it returns; only then does
        the broker send the messages it queued while the client was offline and start
        answering its SUBSCRIBEs. A client that is slow to acknowledge one redelivery (or
        never does) so held back everything published while it was away. Here each resend
        runs on as a task of its own, which writes its PUBLISH before the queued messages are
        published (MQTT-4.6.0-1: resends first, in their original order) and ends at its
        PUBACK or amqtt's 5 s PUBACK timeout; the message stays in ``inflight_out`` until the
        PUBACK comes (see ``_handle_qos1_message_flow``). Recheck on any amqtt upgrade.
        """
        session = self.session
        if session is None:
            return
        for message in [*session.inflight_in.values(), *session.inflight_out.values()]:
            task = asyncio.create_task(self._handle_message_flow(message))
            _RETRIES.add(task)
            task.add_done_callback(_retry_done)

    async def handle_publish(self, publish_packet: PublishPacket) -> None:
        """IoT Core takes QoS 0 and 1 only (iot-core-rules-and-limits §2): a QoS 2 publish
        is answered with a disconnect, as mosquitto's ``max_qos 1`` does, not delivered.
        So is a publish to a topic IoT Core refuses: reserved ``$`` ones other than
        ``$aws/...``, over 256 bytes or 7 slashes (a Basic Ingest prefix not counted), and
        one the ``--auth`` policy does not allow (:meth:`_policy_problem`), and one whose
        payload is over ``--max-payload-bytes`` (:func:`payload_problem`). A retained one
        on a reserved topic is delivered but not kept: IoT Core keeps none there."""
        if publish_packet.qos == QOS_2:
            log.warning(
                "%s: QoS 2 publish on %r refused (QoS 0 and 1 only); connection closed",
                _who(self.session),
                publish_packet.topic_name,
            )
            await self.handle_connection_closed()
            return
        topic = publish_packet.topic_name or ""
        problem = payload_problem(publish_packet.data)
        if problem is None:
            problem = iot_core_topic_problem(topic)
        if problem is None:
            problem = self._policy_problem(topic)
        if problem is not None:
            log.warning("%s: publish refused: %s; connection closed", _who(self.session), problem)
            await self.handle_connection_closed()
            return
        if not self._within_rate(publish_packet):
            return
        if publish_packet.retain_flag and topic.startswith("$"):
            # served once, never kept: kept, a shadow request or delta would be replayed as
            # a command on every subscribe to its topic
            publish_packet.retain_flag = False
            unlogged = _RESERVED_RETAIN_LINES.add()
            if unlogged:
                log.warning(
                    "%s: retain flag on reserved topic %r ignored (%d such publish%s since the "
                    "last line): IoT Core keeps no retained message there",
                    _who(self.session),
                    topic[:64],
                    unlogged,
                    "" if unlogged == 1 else "es",
                )
        if _READY is not None and not _READY.is_set():
            await _READY.wait()  # held, unacknowledged, until the stack has subscribed
        await super().handle_publish(publish_packet)

    def _within_rate(self, publish_packet: PublishPacket) -> bool:
        """Whether this publish is within ``--max-publishes-per-s`` for its connection
        (:class:`_PublishRate`); past it, it is dropped unacknowledged and counted. The
        stack's services (:func:`_is_rules_engine`, :func:`_is_service`) stand in for
        AWS's own and are not limited."""
        if not _MAX_PUBLISHES_PER_S or _is_rules_engine(self.session) or _is_service(self.session):
            return True
        now = asyncio.get_running_loop().time()
        rate: _PublishRate | None = getattr(self, "_publish_rate", None)
        if rate is None:
            rate = self._publish_rate = _PublishRate(
                _MAX_PUBLISHES_PER_S, _MAX_PUBLISHES_PER_S, now
            )
        if rate.take(now):
            return True
        rate.dropped_total += 1
        unlogged = rate.dropped.add()
        if unlogged:
            log.warning(
                "%s publishes faster than %d a second (IoT Core's limit per connection): %d "
                "publish%s on %r and others dropped since the last line, %d in all (QoS 1 "
                "ones unacknowledged: the client sends them again)",
                _who(self.session),
                _MAX_PUBLISHES_PER_S,
                unlogged,
                "" if unlogged == 1 else "es",
                (publish_packet.topic_name or "")[:64],
                rate.dropped_total,
            )
        return False

    def _policy_problem(self, topic: str) -> str | None:
        """With ``--auth``, a publish the policy does not allow closes the connection
        before any PUBACK, as IoT Core does (its lifecycle event gives the reason
        ``AUTH_ERROR``: "authorization failed"). amqtt acknowledged it and dropped it at
        delivery, so a device told to use another site or thing lost every reading it sent
        without knowing: its queue let go of what the PUBACK confirmed."""
        access: AccessControl | None = getattr(self, "access", None)
        username = getattr(self.session, "username", None)
        if access is None or access.allows(username, "publish", topic):
            return None
        return f"{username!r} may not publish to {topic[:64]!r}"

    def attach(self, session: Any, reader: Any, writer: Any) -> None:
        _counted_deliveries(session)
        super().attach(session, _SilenceBoundReader(reader, session), writer)

    async def wait_disconnect(self) -> Any:
        """The connection's end, told to the broker's client loop only once that loop has
        routed what the connection's PUBACKs confirmed. amqtt 0.12.1 acknowledges a PUBLISH
        once it is in the session's queue and routes that queue one message per turn of the
        loop, which ended on the DISCONNECT with the rest unrouted: a publisher that left
        right after its last PUBACK lost what was still queued (on Python 3.12 and 3.13,
        whose event loops let the reader run ahead of the routing, most of a burst). The two
        extra turns let the loop route the last message before it handles the end."""
        result = await super().wait_disconnect()
        queue = getattr(self.session, "delivered_message_queue", None)
        if isinstance(queue, _RoutingQueue):
            await queue.drained()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        return result

    def handle_read_timeout(self) -> None:
        """Nothing came for 1.5 x the client's keep-alive (the reader's timeout, see
        :func:`iot_core_connect_limits`): close the connection as a network failure, so its
        will goes out and a device whose link died without a FIN shows offline. amqtt
        0.12.1 ignored the timeout and kept such a connection, and its session, for good."""
        session = self.session
        log.warning(
            "%s: nothing received for %d s (1.5 x its keep-alive); connection closed",
            _who(session),
            getattr(session, "keep_alive", 0),
        )
        _spawn(self.handle_connection_closed())

    async def handle_subscribe(self, subscribe: SubscribePacket) -> None:
        """A SUBSCRIBE with no filter or a requested-QoS byte MQTT forbids
        (:func:`requested_qos_problem`) closes the connection (MQTT-3.8.3-3, MQTT-3.8.3-4);
        amqtt answered the first with an empty SUBACK and granted the second QoS 1. So does a QoS 2 filter: IoT Core sends no SUBACK for one
        (iot-core-rules-and-limits §2), and closing tells the client at once rather than at
        its SUBACK timeout; amqtt granted it QoS 1, which a device would never get on AWS.
        So does one with more than 8 filters, IoT Core's limit per SUBSCRIBE (§3), except
        from the rules runner (:func:`_is_rules_engine`)."""
        topics = subscribe.payload.topics if subscribe.payload is not None else []
        if self.session is not None and any(_marks_rules_engine(f) for f, _qos in topics):
            self.session.rules_engine = True
        problem = None
        if not topics:
            problem = "no topic filter"
        elif len(topics) > MAX_FILTERS_PER_SUBSCRIBE and not _is_rules_engine(self.session):
            problem = f"{len(topics)} topic filters (IoT Core takes {MAX_FILTERS_PER_SUBSCRIBE})"
        elif any(qos > QOS_2 for _topic, qos in topics):
            problem = requested_qos_problem(next(qos for _topic, qos in topics if qos > QOS_2))
        elif any(qos == QOS_2 for _topic, qos in topics):
            problem = "a QoS 2 topic filter (QoS 0 and 1 only)"
        if problem is not None:
            log.warning("%s: SUBSCRIBE with %s; connection closed", _who(self.session), problem)
            await self.handle_connection_closed()
            return
        await super().handle_subscribe(subscribe)

    async def handle_connect(self, connect: ConnectPacket) -> None:
        """A second CONNECT on a connection is a protocol violation (MQTT-3.1.0-2): the
        connection is closed, and said why here, as only amqtt's own logger, which this
        process silences, did."""
        log.warning(
            "%s: a second CONNECT on its connection (MQTT-3.1.0-2); connection closed",
            _who(self.session),
        )
        await self.handle_connection_closed()

    async def start(self) -> None:
        await super().start()
        self._started = True
        waiter = self._disconnect_waiter
        if getattr(self, "_close_before_start", False) and waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def handle_connection_closed(self) -> None:
        """A close asked for while :meth:`start` is still running is carried out once it has
        made its disconnect waiter. amqtt's ``start`` lets the reader handle the packets that
        came with the CONNECT before it makes the waiter, so a violation in the CONNECT's own
        segment (a second CONNECT sent with the first) found no waiter and the connection
        stayed open: on Python 3.13 every time, on 3.11 by the luck of scheduling."""
        if not getattr(self, "_started", False):
            self._close_before_start = True
        await super().handle_connection_closed()

    async def handle_unsubscribe(self, unsubscribe: UnsubscribePacket) -> None:
        """An UNSUBSCRIBE with no filter closes the connection (MQTT-3.10.3-2)."""
        if unsubscribe.payload is None or not unsubscribe.payload.topics:
            log.warning(
                "%s: UNSUBSCRIBE with no topic filter; connection closed", _who(self.session)
            )
            await self.handle_connection_closed()
            return
        await super().handle_unsubscribe(unsubscribe)

    async def handle_pubrel(self, pubrel: PubrelPacket) -> None:
        """A PUBREL is answered with a PUBCOMP of its packet identifier (MQTT 3.1.1 section
        4.3.3), also one this broker never received: no QoS 2 flow starts here (a QoS 2
        PUBLISH closes the connection, :meth:`handle_publish`), so a PUBREL comes from a
        client that began one with another broker, and it resends the PUBREL at every
        reconnect (MQTT-4.4.0-1) until a PUBCOMP ends it; closing the connection would only
        have it come back and send it again. amqtt 0.12.1 answered nothing."""
        if pubrel.packet_id in self._pubrel_waiters:
            await super().handle_pubrel(pubrel)
            return
        await self._send_packet(PubcompPacket.build(pubrel.packet_id))

    async def handle_puback(self, puback: PubackPacket) -> None:
        """A PUBACK goes to the delivery waiting for it; with none waiting, or one whose wait
        has just timed out, it acknowledges the message in flight here. amqtt's 5 s wait
        (``asyncio.wait_for``) cancels its waiter at the timeout but drops it only when the
        delivery's task runs again: amqtt discarded a PUBACK read in between ("already
        done"), so the acknowledged message stayed in flight, held a place in the window
        for good and was resent on the next reconnect (1 or 2 of 300 PUBACKs sent about
        5 s late)."""
        packet_id = puback.variable_header.packet_id if puback.variable_header else None
        waiter = self._puback_waiters.get(packet_id)  # type: ignore[arg-type]
        if (waiter is not None and not waiter.done()) or self.session is None:
            await super().handle_puback(puback)
            return
        message = self.session.inflight_out.get(packet_id)  # type: ignore[arg-type]
        if message is not None and message.qos == QOS_1:
            message.puback_packet = puback
            del self.session.inflight_out[packet_id]  # type: ignore[arg-type]
            _durably_received(self.session, message)
            self._owed().window_opened.set()


class _Durable(bytes):
    """A device's payload whose PUBACK to the device waits for *received*: set when the
    durable subscriber PUBACKs a copy. The payload object itself travels through amqtt's
    routing (into the subscriber's in-flight messages, or the messages its persistent
    session keeps while it is offline), so a PUBACK for a redelivered copy releases the
    device too."""

    received: asyncio.Future[None]

    def __new__(cls, data: bytes | bytearray, received: asyncio.Future[None]) -> _Durable:
        self = super().__new__(cls, data)
        self.received = received
        return self


def _durably_received(session: Any, message: Any) -> None:
    """*session* PUBACKed *message*: if it is the durable subscriber and the payload is a
    device's held one, release the device's PUBACK. Any other subscriber's PUBACK does not."""
    data = getattr(message, "data", None)
    if (
        isinstance(data, _Durable)
        and _DURABLE is not None
        and session.client_id == _DURABLE.client_id
        and message.puback_packet is not None
        and not data.received.done()
    ):
        data.received.set_result(None)


@dataclass
class _DurableSubscriber:
    """``--durable-subscriber``: the client (the rules runner) whose PUBACK of a copy
    means the reading is on disk."""

    client_id: str
    subscribed: asyncio.Event


_DURABLE: _DurableSubscriber | None = None

_SERVICE_CLIENTS: frozenset[str] = frozenset()
"""``--service-client``: the client ids of the stack's own services, exempt from the bound
on what the broker holds for a connection (:class:`_Owed`)."""


def _is_service(session: Any) -> bool:
    return getattr(session, "client_id", None) in _SERVICE_CLIENTS


_SHADOW_SERVICE: str | None = None
"""``--shadow-service``: the client id of the shadow service, which gets no will sent to a
shadow request topic (:class:`ShadowWillTopic`)."""


class ShadowWillTopic(str):
    """A will's topic that is a shadow request topic
    (``$aws/things/<thing>/shadow[/name/<shadow>]/update|get|delete``). AWS's Device Shadow
    guide: a will sent to a reserved topic is ignored by the Device Shadow service, while
    subscribers and the rules engine get it, so the shadow service (``--shadow-service``)
    is left out of its delivery; the local one applied it as an update. The topic travels
    as this type through amqtt's broadcast to :meth:`Broker._topic_filtering`."""


def _is_durable(session: Any) -> bool:
    return _DURABLE is not None and getattr(session, "client_id", None) == _DURABLE.client_id


def _is_rules_engine(session: Any) -> bool:
    """Whether *session* is the rules runner, which stands in for IoT Core's rules engine:
    that reads its rules' topics without MQTT subscriptions, so IoT Core's per-client
    subscription limits are no limits of the engine's. It is ``up``'s
    ``--durable-subscriber``, or a client that subscribed to a Basic Ingest filter
    (``$aws/rules/...``), which IoT Core lets no client subscribe to."""
    return _is_durable(session) or bool(getattr(session, "rules_engine", False))


def _marks_rules_engine(topic_filter: str) -> bool:
    if topic_filter.startswith("$share/"):  # $share/<group>/<filter>
        topic_filter = topic_filter.split("/", 2)[2] if topic_filter.count("/") >= 2 else ""
    return split_basic_ingest(topic_filter) is not None


_RETRIES: set[asyncio.Task[None]] = set()
"""Resends still running (the event loop keeps only weak references to tasks)."""


class _SilenceBoundReader:
    """amqtt's reader with every read bounded by the session's reader timeout (1.5 x its
    keep-alive): amqtt bounds only the read of a packet's fixed header, so a link that died
    in the middle of a packet left the rest of it awaited for good, the connection open and
    the will unsent. A read that times out raises TimeoutError, which amqtt's reader loop
    hands to :meth:`RedeliveringHandler.handle_read_timeout`. No read starts while the
    connection's unrouted publishes are past their bound (:class:`_Unrouted`)."""

    def __init__(self, reader: Any, session: Any) -> None:
        self._reader = reader
        self.session = session

    async def read(self, n: int = -1) -> bytes:
        await _unrouted(self.session).wait_for_routing()
        limit = getattr(self.session, "keep_alive", 0)
        if not limit or limit <= 0:
            return await self._reader.read(n)
        async with asyncio.timeout(limit):
            return await self._reader.read(n)

    def feed_eof(self) -> None:
        self._reader.feed_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


_MAX_PAYLOAD_BYTES = 0
"""``--max-payload-bytes``: IoT Core's payload limit (0: none)."""
_MAX_PUBLISHES_PER_S = 0
"""``--max-publishes-per-s``: publishes a connection may send per second (0: no limit)."""


def payload_problem(data: bytes | bytearray | None) -> str | None:
    """A payload over ``--max-payload-bytes``: IoT Core disconnects its client (CLIENT_ERROR,
    PAYLOAD_LIMIT_EXCEEDED) rather than acknowledging it. The packet limit
    (``--max-packet-bytes``) leaves room for the topic and headers, so it let a payload a
    few hundred bytes over through, acknowledged, to be dropped further on. Unacknowledged,
    the message stays with its sender, and nothing reaches the rules runner to quarantine:
    the refusal names the quarantine's reason, ``oversize``, so the broker's log line is
    the record of it."""
    size = len(data or b"")
    if _MAX_PAYLOAD_BYTES and size > _MAX_PAYLOAD_BYTES:
        return f"oversize (payload of {size} bytes; IoT Core takes at most {_MAX_PAYLOAD_BYTES})"
    return None


_READY: asyncio.Event | None = None
"""With ``--hold-publishes-s``: set once the starter says its subscribers are in (SIGUSR1),
or when that many seconds have passed. Until then every PUBLISH waits, unacknowledged and
unrouted: ``plantwatch up`` starts the broker before the rules runner subscribes, and a
device that connected the moment the port opened had its first second of readings
acknowledged and routed to nobody."""

_CLOSING: set[asyncio.Task[None]] = set()
"""Connection closes started from synchronous amqtt callbacks (keep-alive timeouts)."""


def _spawn(coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


class _DeliveryTasks(deque[asyncio.Task[Any]]):
    """amqtt's running delivery tasks, each let go of as soon as it ends.

    amqtt 0.12.1 keeps every delivery task in one deque and lets go of ended ones only from
    its head, so one delivery that does not end (to a client that stopped reading) kept
    every later task, to any client, and the payload it carries. Recheck on any amqtt
    upgrade."""

    def append(self, task: asyncio.Task[Any]) -> None:
        super().append(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        try:
            self.remove(task)
        except ValueError:
            return  # amqtt's broadcast loop took it already, and looked at its outcome
        if not task.cancelled() and task.exception() is not None:
            log.debug("delivery failed: %r", task.exception())


def _retry_done(task: asyncio.Task[None]) -> None:
    _RETRIES.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # no PUBACK in time or the connection closed: the message stays in flight
        log.debug("redelivery not acknowledged: %r", task.exception())


class Broker(_AmqttBroker):
    """amqtt reads MQTT-4.7.2-1 (no wildcard match of ``$`` topics) as a ban on any client
    publish to a ``$`` topic and drops the connection; AWS IoT's reserved ``$aws/`` topics
    carry the shadow protocol, so those are let through. ``$SYS`` and the rest stay closed.
    Every connection's handler is a ``RedeliveringHandler`` (see there why).

    With *access* (``--auth``), every publish, subscription, delivery and retained message
    is checked against it, and a CONNECT is authenticated before amqtt touches any session:
    amqtt 0.12.1 deletes or takes over the session named by the client id first and asks
    the auth plugins afterwards, so an anonymous client could end any client's session.
    """

    def __init__(self, config: Any, access: AccessControl | None = None) -> None:
        super().__init__(config)
        self.access = access
        self._tasks_queue = _DeliveryTasks()
        self._broadcast_queue = _RoutingQueue(_broadcast_source)

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[Any, Any]:
        try:
            if self.access is None:
                handler, session = await super()._initialize_client_session(
                    reader, writer, remote_address, remote_port
                )
            else:
                handler, session = await self._authenticated_session(reader, writer)
        except AMQTTError:
            await writer.close()  # amqtt leaves the socket open when the CONNECT is unreadable
            raise
        # amqtt builds the handler inside its CONNECT parsing; the subclass adds no state
        # beyond the policy it checks publishes against.
        handler.__class__ = RedeliveringHandler
        handler.access = self.access
        handler.broker = self
        return handler, session

    async def _authenticated_session(self, reader: Any, writer: Any) -> tuple[Any, Any]:
        """amqtt's ``_initialize_client_session`` with the credentials checked first and the
        client id replaced by the username (mosquitto's ``use_username_as_clientid``), so a
        credential can only ever hold its own session. Recheck on any amqtt upgrade."""
        assert self.access is not None
        try:
            handler, session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except NoDataError as exc:
            raise AMQTTError(exc) from exc
        except MQTTError:
            await writer.close()
            raise
        if not self.access.authenticate(session.username, session.password):
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"client {session.client_id!r}: bad or missing credentials")
        if session.will_flag and not self.access.allows(
            session.username, "publish", session.will_topic or ""
        ):
            # amqtt publishes a will unchecked when the connection drops, so a device could
            # send, say, another device's telemetry as its will; IoT Core wants iot:Publish
            # on the will topic. The will is dropped; the device still connects.
            log.warning(
                "%r may not publish its will to %r: will dropped",
                session.username,
                (session.will_topic or "")[:64],
            )
            session.will_flag = False
            session.will_retain = False
        session.client_id = session.username
        if session.clean_session:
            await self._delete_session(session.client_id)
            session.parent = 0
        elif session.client_id in self._sessions:
            existing, _ = self._sessions[session.client_id]
            for attr in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "keep_alive",
                "username",
                "password",
            ):
                setattr(existing, attr, getattr(session, attr))
            session = existing
            session.parent = 1
        else:
            session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _delete_session(self, client_id: str) -> None:
        """A clean-session CONNECT with a client id already connected disconnects the
        existing client first (MQTT-3.1.4-2; IoT Core: "a second connection with the same ID
        disconnects the first"). amqtt 0.12.1 takes over only a persistent session: for a
        clean one it deleted the old session's subscriptions and left its connection open,
        so the first client stayed connected and silently received nothing again."""
        session, handler = self._sessions.get(client_id, (None, None))
        if session is not None and handler is not None and session.transitions.is_connected():
            log.warning("client %r connected again: closing its earlier connection", client_id)
            await handler.handle_connection_closed()
            await handler.stop()
        await super()._delete_session(client_id)

    async def _topic_filtering(self, session: Any, topic: str, action: Action) -> bool:
        if (
            action == Action.RECEIVE
            and isinstance(topic, ShadowWillTopic)
            and _SHADOW_SERVICE is not None
            and getattr(session, "client_id", None) == _SHADOW_SERVICE
        ):
            return False  # AWS's Device Shadow service ignores a will on a reserved topic
        if self.access is None:
            return await super()._topic_filtering(session, topic, action)
        return self.access.allows(getattr(session, "username", None), str(action), topic)

    async def add_subscription(self, subscription: tuple[str, int], session: Any) -> int:
        """No QoS above 1 is granted (a QoS 2 SUBSCRIBE closed the connection already, see
        :meth:`RedeliveringHandler.handle_subscribe`). A filter IoT Core refuses
        (reserved, too long, too deep) gets the failure code, as does one MQTT forbids
        (:func:`filter_problem`), which amqtt 0.12.1 granted."""
        topic_filter, qos = subscription
        problem = filter_problem(topic_filter) or iot_core_topic_problem(topic_filter)
        if problem is None:
            problem = self._subscription_quota_problem(topic_filter, session)
        if problem is not None:  # IoT Core answers such a SUBSCRIBE with a failure code
            log.warning("%s: subscription refused: %s", _who(session), problem)
            return SUBACK_FAILURE
        granted = await super().add_subscription((topic_filter, min(qos, QOS_1)), session)
        if _DURABLE is not None and session.client_id == _DURABLE.client_id:
            _DURABLE.subscribed.set()  # devices' publishes held for it may now be matched
        return granted

    def _subscription_quota_problem(self, topic_filter: str, session: Any) -> str | None:
        """A new filter past IoT Core's 50 subscriptions per connection (§3); subscribing
        again to a held filter replaces it and counts nothing. The rules runner
        (:func:`_is_rules_engine`) has no such quota."""
        if _is_rules_engine(session):
            return None
        held = {
            held_filter
            for held_filter, holders in self._subscriptions.items()
            if any(holder.client_id == session.client_id for holder, _qos in holders)
        }
        if topic_filter in held or len(held) < MAX_SUBSCRIPTIONS_PER_CONNECTION:
            return None
        return (
            f"{topic_filter[:64]!r} would be subscription {len(held) + 1} "
            f"(IoT Core takes {MAX_SUBSCRIPTIONS_PER_CONNECTION} per connection)"
        )

    def durable_subscriber_reads(self, topic: str) -> bool:
        """Whether one of the ``--durable-subscriber``'s filters matches *topic*."""
        if _DURABLE is None:
            return False
        return any(
            self._matches(topic, topic_filter)
            for topic_filter, holders in self._subscriptions.items()
            if any(holder.client_id == _DURABLE.client_id for holder, _qos in holders)
        )

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Any
    ) -> None:
        """A retained message goes to a subscriber only if its filter equals the topic, with
        no wildcards (iot-core-rules-and-limits §2), so the rules runner's
        ``dt/plantwatch/+/+/telemetry`` never replays retained telemetry when it subscribes.
        amqtt also calls this at every CONNECT with the filters of *all* sessions, so the
        filter must be one this session holds; with an ACL the session must also be allowed
        to receive the topic."""
        topic_filter = subscription[0]
        handler = self._get_handler(session)
        retained = self._retained_messages.get(topic_filter)
        if handler is None or retained is None or "+" in topic_filter or "#" in topic_filter:
            return
        held = [
            qos
            for holder, qos in self._subscriptions.get(topic_filter, ())
            if holder.client_id == session.client_id
        ]
        if not held:
            return
        if self.access is None or self.access.allows(session.username, "receive", topic_filter):
            qos = held[0]
            await handler.mqtt_publish(
                retained.topic, retained.data, min(qos, retained.qos or qos), retain=True
            )

    async def _handle_message_delivery(self, session: Any, handler: Any, wait: Any) -> bool:
        message = wait.result()
        topic = getattr(message, "topic", None) or ""
        if not topic.startswith("$aws/") or "+" in topic or "#" in topic:
            return await super()._handle_message_delivery(session, handler, wait)
        await self.plugins_manager.fire_event(
            BrokerEvents.MESSAGE_RECEIVED, client_id=session.client_id, message=message
        )
        if await self._topic_filtering(session, topic=topic, action=Action.PUBLISH):
            await self.plugins_manager.fire_event(
                BrokerEvents.MESSAGE_BROADCAST, client_id=session.client_id, message=message
            )
            await self._broadcast_message(session, topic, message.data)
            if message.publish_packet and message.publish_packet.retain_flag:
                await self.retain_message(session, topic, message.data, message.qos)
        return True


class OpenAuthPlugin(BaseAuthPlugin):
    """Lets every client in, like AnonymousAuthPlugin, without marking sessions anonymous:
    amqtt keeps no offline QoS 1 messages for anonymous persistent sessions, so a restarted
    rules runner would miss what was published while it was down."""

    async def authenticate(self, *, session: object) -> bool:
        session.is_anonymous = False  # type: ignore[attr-defined]
        return True

    @dataclass
    class Config:
        pass


_FLAGS_OF = {PUBREL: 0x02, SUBSCRIBE: 0x02, UNSUBSCRIBE: 0x02}
"""The fixed-header flags MQTT 3.1.1 requires (section 2.2.2): these types 0b0010, every
other type but PUBLISH 0 (MQTT-2.2.2-2)."""
_ACKS = {PUBACK, PUBREC, PUBREL, PUBCOMP}
"""The acknowledgements of a QoS 1 or 2 flow, each carrying the identifier it answers."""
_SERVER_ONLY = {CONNACK: "CONNACK", SUBACK: "SUBACK", UNSUBACK: "UNSUBACK", PINGRESP: "PINGRESP"}


def requested_qos_problem(byte: int) -> str | None:
    """Why MQTT-3.8.3-4 makes a SUBSCRIBE with this requested-QoS byte malformed: its upper
    six bits are reserved (0) and its QoS is 0, 1 or 2. The byte is named: ``0x41`` is QoS
    1 with a reserved bit set, which amqtt's own check read as a QoS over 2."""
    if byte & 0xFC:
        return f"requested QoS byte {byte:#04x}: reserved bits set (MQTT-3.8.3-4)"
    if byte == 0x03:
        return "requested QoS byte 0x03: QoS 3 (MQTT-3.8.3-4: QoS 0, 1 or 2)"
    return None


def header_problem(header: MQTTFixedHeader, max_bytes: int = 0) -> str | None:
    """Why a server must close the connection on a packet with this fixed header: larger
    than *max_bytes* (0: no limit), flags MQTT forbids, a PUBLISH of QoS 3 or of QoS 0 with
    DUP set, or a packet only a server sends. amqtt 0.12.1 read them all: it dropped a QoS 3
    PUBLISH without a word, routed a QoS 0 one with DUP, granted a SUBSCRIBE with the wrong
    flags, and skipped a CONNACK from a client. IoT Core's documented differences from MQTT
    do not touch DUP on what a client sends (only that its own QoS 0 redeliveries leave DUP
    unset), so MQTT-3.3.1-2 and MQTT-4.8.0-1 decide; mosquitto routes it."""
    size = 1 + _varint_size(header.remaining_length) + header.remaining_length
    kind = header.packet_type
    if max_bytes and size > max_bytes:
        return f"oversized packet: {size} bytes (type {kind}) over the limit of {max_bytes}"
    if kind == PUBLISH:
        qos = (header.flags >> 1) & 0x03
        if qos == 0x03:
            return "PUBLISH with QoS 3 (MQTT-3.3.1-4)"
        if qos == 0 and header.flags & 0x08:
            return "PUBLISH of QoS 0 with DUP set (MQTT-3.3.1-2)"
        return None
    if kind in _SERVER_ONLY:
        return f"{_SERVER_ONLY[kind]} sent by a client (only a server sends it)"
    expected = _FLAGS_OF.get(kind, 0)
    if header.flags != expected:
        return f"packet type {kind} with flags {header.flags:#x}, not {expected:#x} (MQTT-2.2.2-2)"
    return None


def strict_fixed_headers(max_bytes: int = 0) -> None:
    """Close the connection of a client whose packet :func:`header_problem` refuses (larger
    than *max_bytes*, fixed header included, when it is not 0), as soon as its fixed header
    is read and before its body is: a fixed header that reads as end-of-stream makes
    amqtt's reader, and its CONNECT parsing, close it. Patches amqtt's fixed-header decoder
    for this process (the broker's own)."""
    decode = MQTTFixedHeader.from_stream.__func__  # type: ignore[attr-defined]

    async def checked(cls: type[MQTTFixedHeader], reader: Any) -> MQTTFixedHeader | None:
        try:
            header = await decode(cls, reader)
        except MQTTError:  # amqtt's reader loop skips an MQTTError and reads on
            header, problem = None, "remaining length in more than 4 bytes (MQTT 3.1.1 2.2.3)"
        else:
            if header is None:
                return None
            problem = header_problem(header, max_bytes)
        if problem is not None:
            # after CONNECT the reader is a _SilenceBoundReader, which knows the client
            log.warning(
                "%s: %s; connection closed", _who(getattr(reader, "session", None)), problem
            )
            return None
        return header

    MQTTFixedHeader.from_stream = classmethod(checked)  # type: ignore[method-assign,assignment]


def publish_topic_problem(topic: str) -> str | None:
    """Why MQTT forbids *topic* as a PUBLISH's topic name (MQTT 3.1.1 section 4.7.3,
    MQTT-3.3.2-2): empty, holding U+0000 or a wildcard."""
    if not topic:
        return "empty topic"
    if "\0" in topic:
        return f"topic {topic[:64]!r} holds U+0000"
    if "+" in topic or "#" in topic:
        return f"topic {topic[:64]!r} holds a wildcard"
    return None


def filter_problem(topic_filter: str) -> str | None:
    """Why MQTT forbids *topic_filter* in a SUBSCRIBE or UNSUBSCRIBE (MQTT 3.1.1 sections
    4.7.1 and 4.7.3): empty, holding U+0000, or a wildcard that is not a whole level or a
    ``#`` that is not the last one (amqtt refused those in a SUBSCRIBE only)."""
    if not topic_filter:
        return "empty topic filter"
    if "\0" in topic_filter:
        return f"topic filter {topic_filter[:64]!r} holds U+0000"
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        misplaced = ("+" in level and level != "+") or ("#" in level and level != "#")
        if misplaced or (level == "#" and index != len(levels) - 1):
            return f"topic filter {topic_filter[:64]!r} has a misplaced wildcard"
    return None


class IllFormedTopicError(Exception):
    """A topic or topic filter that is not UTF-8: the reader loop ends on it and closes
    the connection, as MQTT-1.5.3-1 requires and mosquitto and IoT Core do."""


def strict_utf8_topics() -> None:
    """amqtt 0.12.1 reads a topic that is not UTF-8 as the text of its bytes' repr
    (``b'dt/...'``), acknowledges the publish and routes it under that other name; here such
    a PUBLISH, SUBSCRIBE or UNSUBSCRIBE closes the connection instead, as does an
    UNSUBSCRIBE with a filter MQTT forbids (:func:`filter_problem`; amqtt answered
    UNSUBACK). So does a PUBLISH whose topic MQTT forbids (:func:`publish_topic_problem`):
    amqtt acknowledged and routed an empty or U+0000 one, and discarded a wildcard one
    mid-packet, leaving the connection open, the publish unanswered and the rest of the
    packet to be read as the next one. Patches the decoders of amqtt's PUBLISH, SUBSCRIBE
    and UNSUBSCRIBE packets for this process (the broker's own)."""

    async def decode_topic(reader: Any) -> str:
        length = int.from_bytes(await read_or_raise(reader, 2), "big")
        data = await read_or_raise(reader, length) if length else b""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("topic %r is not UTF-8; connection closed", data[:64])
            raise IllFormedTopicError(repr(data[:64])) from None

    async def decode_publish_topic(reader: Any) -> str:
        topic = await decode_topic(reader)
        problem = publish_topic_problem(topic)
        if problem is not None:
            log.warning("publish refused: %s; connection closed", problem)
            raise IllFormedTopicError(problem)
        return topic

    async def decode_unsubscribe_filter(reader: Any) -> str:
        topic_filter = await decode_topic(reader)
        problem = filter_problem(topic_filter)
        if problem is not None:  # an UNSUBACK has no failure code to refuse one with
            log.warning("UNSUBSCRIBE refused: %s; connection closed", problem)
            raise IllFormedTopicError(problem)
        return topic_filter

    publish.decode_string = decode_publish_topic  # type: ignore[attr-defined]
    subscribe.decode_string = decode_topic  # type: ignore[attr-defined]
    unsubscribe.decode_string = decode_unsubscribe_filter  # type: ignore[attr-defined]


_PACKET_NAMES = {
    1: "CONNECT",
    2: "CONNACK",
    3: "PUBLISH",
    4: "PUBACK",
    5: "PUBREC",
    6: "PUBREL",
    7: "PUBCOMP",
    8: "SUBSCRIBE",
    9: "SUBACK",
    10: "UNSUBSCRIBE",
    11: "UNSUBACK",
    12: "PINGREQ",
    13: "PINGRESP",
    14: "DISCONNECT",
}


class MalformedPacketError(Exception):
    """A packet whose fields do not fill its remaining length exactly, or that lacks the
    packet identifier it needs (:func:`_packet_id_problem`): amqtt's reader loop
    ends on it (it is no ``MQTTError``, which that loop skips) and closes the connection,
    as MQTT 3.1.1 section 4.8 requires for a malformed packet and mosquitto and IoT Core
    do."""


class _PacketBody:
    """One packet's bytes after its fixed header, read whole before any field is decoded,
    so a decoder can neither run into the next packet nor leave bytes of this one behind."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    async def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._at + n
        chunk = self._data[self._at : end]
        self._at += len(chunk)
        return chunk

    @property
    def left(self) -> int:
        return len(self._data) - self._at


def _packet_id_problem(packet: Any, name: str) -> str | None:
    """A SUBSCRIBE, an UNSUBSCRIBE or a PUBLISH of QoS 1 or 2 with packet identifier 0
    (MQTT-2.3.1-1 requires one that is not), or an acknowledgement with it: a PUBACK,
    PUBREC, PUBREL or PUBCOMP names the PUBLISH or PUBREL it answers (MQTT-2.3.1-6), so
    one with identifier 0 answers nothing that can exist. amqtt acknowledged the first
    three, skipped a PUBACK 0 and answered a PUBREL 0 with PUBCOMP 0; mosquitto closes."""
    header = packet.fixed_header
    packet_id = getattr(packet.variable_header, "packet_id", None)
    if packet_id != 0:
        return None
    if header.packet_type in _ACKS:
        return f"{name} with packet identifier 0 (MQTT-2.3.1-6: it answers none sent)"
    if header.packet_type in (SUBSCRIBE, UNSUBSCRIBE) or (
        header.packet_type == PUBLISH and header.flags & 0x06
    ):
        return f"{name} with packet identifier 0 (MQTT-2.3.1-1)"
    return None


def _protocol_level(body: bytes) -> int | None:
    """The protocol level of a CONNECT's body (after a 2-byte length and the name)."""
    if len(body) < 2:
        return None
    at = 2 + int.from_bytes(body[:2], "big")
    return body[at] if at < len(body) else None


async def _other_protocol_connect(fixed_header: MQTTFixedHeader, body: bytes) -> ConnectPacket:
    """A CONNECT of a protocol level this broker does not speak (MQTT 5), with only its
    variable header read: its payload follows that protocol's layout, not 3.1.1's, and
    MQTT-3.1.2-2 wants CONNACK 0x01 "unacceptable protocol version" for it, which amqtt
    sends once it sees the level. Placeholders stand in for the fields amqtt checks first."""
    variable_header = await ConnectVariableHeader.from_stream(_PacketBody(body), fixed_header)
    payload = ConnectPayload(client_id="", will_topic="", will_message=b"")
    payload.username = "" if variable_header.username_flag else None
    payload.password = "" if variable_header.password_flag else None
    return ConnectPacket(fixed_header, variable_header, payload)


def whole_packets() -> None:
    """Decode each packet from exactly its remaining length, and close the connection of
    one whose fields end before it or run past it (MQTT 3.1.1 section 4.8: malformed), or
    that lacks a packet identifier it needs (:func:`_packet_id_problem`). amqtt 0.12.1
    decoded fields straight off the socket: a CONNECT with bytes past its fields got a
    CONNACK and the bytes were read as the next packet, and a PUBLISH or SUBSCRIBE shorter
    than its fields took the next packet's bytes for its own (or, with none coming, left
    the connection waiting). The offence is logged naming the client, or by the CONNECT's
    refusal (:func:`iot_core_connect_limits`). A CONNECT of another protocol level is left
    to amqtt's refusal (:func:`_other_protocol_connect`). Patches amqtt's packet decoding
    for this process (the broker's own); install before :func:`strict_connect`. Recheck on
    any amqtt upgrade."""
    decode = MQTTPacket.from_stream.__func__  # type: ignore[attr-defined]

    async def bounded(
        cls: Any, reader: Any, fixed_header: Any = None, variable_header: Any = None
    ) -> Any:
        if fixed_header is None:
            return await decode(cls, reader, fixed_header, variable_header)
        length = fixed_header.remaining_length
        data = await read_or_raise(reader, length) if length else b""
        if fixed_header.packet_type == CONNECT and _protocol_level(data) not in (None, 4):
            return await _other_protocol_connect(fixed_header, data)
        body = _PacketBody(data)
        name = _PACKET_NAMES.get(fixed_header.packet_type, str(fixed_header.packet_type))
        try:
            packet = await decode(cls, body, fixed_header, variable_header)
        except NoDataError:
            problem: str | None = (
                f"malformed {name}: its fields run past its remaining length of {length} bytes "
                "(MQTT 3.1.1 section 4.8)"
            )
        else:
            problem = _packet_id_problem(packet, name)
            if body.left:
                problem = f"malformed {name}: {body.left} bytes past its fields (section 4.8)"
        if problem is None:
            return packet
        session = getattr(reader, "session", None)
        if session is not None:  # after CONNECT; a first CONNECT's refusal is logged there
            log.warning("%s: %s; connection closed", _who(session), problem)
        raise MalformedPacketError(problem)

    MQTTPacket.from_stream = classmethod(bounded)  # type: ignore[method-assign,assignment]


def strict_connect() -> None:
    """The CONNECT MQTT requires, which amqtt 0.12.1 did not check:

    - the first packet is a CONNECT (MQTT-3.1.0-1): amqtt read any packet as one and then
      waited for bytes that never came, holding the connection open and unanswered;
    - the client id, will topic and user name are UTF-8 without U+0000 (MQTT-1.5.3-1,
      MQTT-1.5.3-2): amqtt took invalid UTF-8 as the text of the bytes' repr (``"b'\\xff'"``),
      so a will went out on a topic nobody named.

    A refused CONNECT closes the connection without a CONNACK, as mosquitto does. The
    password is binary data in MQTT 3.1.1 and is decoded as amqtt does. Patches amqtt's
    CONNECT decoding for this process (the broker's own). Recheck on any amqtt upgrade."""
    decode_connect = ConnectPacket.from_stream.__func__  # type: ignore[attr-defined]

    async def connect_first(
        cls: Any, reader: Any, fixed_header: Any = None, variable_header: Any = None
    ) -> Any:
        if fixed_header is None:
            fixed_header = await MQTTFixedHeader.from_stream(reader)
            if fixed_header is None:
                raise NoDataError("no CONNECT")
            if fixed_header.packet_type != CONNECT:
                name = _PACKET_NAMES.get(fixed_header.packet_type, str(fixed_header.packet_type))
                raise MQTTError(f"first packet is {name}, not CONNECT (MQTT-3.1.0-1)")
            try:
                return await decode_connect(cls, reader, fixed_header, variable_header)
            except MalformedPacketError as exc:
                raise MQTTError(str(exc)) from None  # refused without a CONNACK
        return await decode_connect(cls, reader, fixed_header, variable_header)

    async def text(reader: Any, what: str) -> str:
        length = int.from_bytes(await read_or_raise(reader, 2), "big")
        data = await read_or_raise(reader, length) if length else b""
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MQTTError(f"{what} {data[:64]!r} is not UTF-8 (MQTT-1.5.3-1)") from None
        if "\0" in value:
            raise MQTTError(f"{what} {value[:64]!r} holds U+0000 (MQTT-1.5.3-2)")
        return value

    async def payload_from_stream(
        cls: Any, reader: Any, _fixed_header: Any, variable_header: Any
    ) -> Any:
        payload = cls()
        payload.client_id = await text(reader, "client id")
        if not payload.client_id:
            payload.client_id = gen_client_id()  # MQTT-3.1.3-6, as amqtt does
            payload.client_id_is_random = True
        if variable_header is not None and variable_header.will_flag:
            payload.will_topic = await text(reader, "will topic")
            payload.will_message = await decode_data_with_length(reader)
        if variable_header is not None and variable_header.username_flag:
            payload.username = await text(reader, "user name")
        if variable_header is not None and variable_header.password_flag:
            payload.password = await decode_string(reader)
        return payload

    ConnectPacket.from_stream = classmethod(connect_first)  # type: ignore[method-assign,assignment]
    ConnectPayload.from_stream = classmethod(payload_from_stream)  # type: ignore[method-assign,assignment]


def will_problem(session: Any) -> str | None:
    """Why MQTT forbids the will of this CONNECT: QoS 3 (MQTT-3.1.2-14), a QoS or retain
    flag without a will (MQTT-3.1.2-13, MQTT-3.1.2-15), or a topic no PUBLISH may have
    (:func:`publish_topic_problem`). amqtt took them all, and published a will on
    ``dt/#`` to every subscriber of that filter. Also a will of QoS 2: IoT Core has QoS 0
    and 1 only (users report it closing such a connection), and mosquitto's ``max_qos 1``
    closes it. And a will topic IoT Core refuses (:func:`edge.wire.iot_core_topic_problem`),
    which a PUBLISH could not use either: amqtt sent it to every ``#`` subscriber."""
    if session.will_qos == 3:
        return "will QoS 3 (MQTT-3.1.2-14)"
    if not session.will_flag:
        if session.will_qos or session.will_retain:
            return "will QoS or retain flag set without a will (MQTT-3.1.2-13)"
        return None
    if session.will_qos == QOS_2:
        return "will QoS 2 (QoS 0 and 1 only)"
    topic = session.will_topic or ""
    problem = publish_topic_problem(topic) or iot_core_topic_problem(topic)
    return None if problem is None else f"will {problem}"


def iot_core_connect_limits() -> None:
    """IoT Core's client id limit (iot-core-rules-and-limits §2), which amqtt 0.12.1 does not
    apply: a client id over 128 bytes or starting with ``$`` is refused with CONNACK
    "identifier rejected". Also: the whole CONNECT must arrive within ``CONNECT_TIMEOUT_S``;
    a will MQTT forbids (:func:`will_problem`) refuses the CONNECT; a will on a reserved
    ``$`` topic loses its retain flag (IoT Core keeps no retained message there); and a
    client silent for 1.5 x its keep-alive is disconnected (MQTT-3.1.2-24; amqtt's broker
    never closed a silent connection), the keep-alive being the one IoT Core holds it to
    (:func:`iot_core_keep_alive`): MQTT 3.1.1 has no way to tell the client, and IoT Core
    does not either. Patches amqtt's CONNECT handling for this process (the broker's own).
    Recheck on any amqtt upgrade."""
    connect = BrokerProtocolHandler.init_from_connect.__func__  # type: ignore[attr-defined]

    async def limited(cls: Any, reader: Any, writer: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            handler, session = await asyncio.wait_for(
                connect(cls, reader, writer, *args, **kwargs), CONNECT_TIMEOUT_S
            )
        except TimeoutError:
            peer = writer.get_peer_info() or ("?", 0)
            problem = f"{peer[0]}:{peer[1]} sent no CONNECT within {CONNECT_TIMEOUT_S:g} s"
            log.warning("%s; connection closed", problem)
            raise MQTTError(problem) from None  # both callers close the connection
        except MQTTError as exc:
            log.warning("CONNECT refused: %s", _connect_refusal(str(exc)))
            raise
        problem = client_id_problem(session.client_id or "") or service_id_problem(session)
        if problem is not None:
            log.warning("CONNECT refused: %s", problem)
            await ConnackPacket.build(0, IDENTIFIER_REJECTED).to_stream(writer)
            raise MQTTError(problem)  # both callers close the connection
        problem = will_problem(session)
        if problem is not None:
            log.warning("CONNECT refused: %s %s", _who(session), problem)
            raise MQTTError(problem)
        if session.will_flag and session.will_retain and (session.will_topic or "").startswith("$"):
            # amqtt retains a will itself, past handle_publish: kept, a will on a shadow's
            # topic would be replayed as a command to each later subscriber
            log.warning(
                "%s: retain flag of its will on reserved topic %r ignored: IoT Core keeps no "
                "retained message there",
                _who(session),
                (session.will_topic or "")[:64],
            )
            session.will_retain = False
        if session.will_flag and parse_request_topic(session.will_topic or "") is not None:
            session.will_topic = ShadowWillTopic(session.will_topic)
        # the reader's timeout: RedeliveringHandler.handle_read_timeout closes
        session.keep_alive = math.ceil(iot_core_keep_alive(session.keep_alive) * KEEP_ALIVE_GRACE)
        return handler, session

    BrokerProtocolHandler.init_from_connect = classmethod(limited)  # type: ignore[method-assign,assignment]


_SERVICE_SECRET: str | None = None
"""The per-run secret the stack's services (``--service-client``) present as their password,
user name = client id, when the broker runs without ``--auth``; None: ids not protected."""


def service_id_problem(session: Any) -> str | None:
    """Why this CONNECT may not use its client id: one of the stack's own services' ids
    (``--service-client``) without the per-run secret. MQTT's session takeover would let
    the client disconnect the service, and a stray or careless client that reconnects
    would keep it off. With ``--auth`` the id is the credential's user name (mosquitto's
    ``use_username_as_clientid``), so only the service holds it; without ``--auth`` the
    secret stands in. A device connects without credentials as before."""
    client_id = session.client_id or ""
    if _SERVICE_SECRET is None or client_id not in _SERVICE_CLIENTS:
        return None
    password = session.password
    if isinstance(password, str):
        password = password.encode("utf-8", "replace")
    if session.username == client_id and hmac.compare_digest(
        password or b"", _SERVICE_SECRET.encode()
    ):
        return None
    return (
        f"client id {client_id!r} is the stack's own service's (CONNACK identifier "
        "rejected); connect the device with another client id, its thing name"
    )


def iot_core_keep_alive(asked: int) -> int:
    """The keep-alive IoT Core holds a client to (iot-core-rules-and-limits §2): under 30 s
    becomes 30, 0 or over 1200 becomes 1200. amqtt took any value, 0 as "never time out",
    so a device whose link died without a FIN stayed connected, its will unsent, for good."""
    low, high = KEEP_ALIVE_RANGE_S
    return high if asked == 0 else min(max(asked, low), high)


def _connect_refusal(reason: str) -> str:
    """amqtt's reason, with what to do where the operator can act on it: an MQTT 5 device
    (the awsiotsdk's mqtt5 client, paho with MQTTv5) gets CONNACK "unacceptable protocol
    version" here and retries forever, and its operator sees nothing on the device side.
    amqtt gives no reason (``None``) for a CONNECT with a password and no user name."""
    if reason == "None":
        return (
            "a password without a user name (MQTT-3.1.2-22): CONNACK bad user name or "
            "password; set the user name in the client's settings"
        )
    if reason.startswith("Invalid protocol from"):
        return (
            f"{reason} (MQTT protocol level): this embedded broker (amqtt) speaks MQTT 3.1.1 "
            "only; connect with MQTT 3.1.1, or run `plantwatch up --broker mosquitto` for "
            "MQTT 5 clients"
        )
    return reason


def _varint_size(value: int) -> int:
    size = 1
    while value >= 128:
        value //= 128
        size += 1
    return size


async def _serve(
    host: str,
    port: int,
    access: AccessControl | None,
    parent_pid: int | None = None,
    lifeline_fd: int | None = None,
    hold_publishes_s: float = 0.0,
    durable_subscriber: str | None = None,
) -> None:
    global _READY, _DURABLE
    if durable_subscriber:
        _DURABLE = _DurableSubscriber(durable_subscriber, asyncio.Event())
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {"cloud.runtime.amqtt_server.OpenAuthPlugin": {}},
        "session_expiry_interval": 3600,
    }
    loop = asyncio.get_running_loop()
    if hold_publishes_s > 0:  # before the port opens: the starter signals once it accepts
        _READY = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, _READY.set)
        loop.call_later(hold_publishes_s, _READY.set)  # a starter that never says so
    broker = Broker(config, access)
    await broker.start()
    print(f"ready mqtt://{host}:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if access is not None:
        loop.add_signal_handler(signal.SIGHUP, _reload, access)
    if lifeline_fd is not None:
        loop.add_reader(lifeline_fd, _lifeline_readable, lifeline_fd, parent_pid)
    if parent_pid is not None:
        watch = asyncio.create_task(_watch_parent(parent_pid))
    await stop.wait()
    if parent_pid is not None:
        watch.cancel()
    await broker.shutdown()


def _lifeline_readable(fd: int, parent_pid: int | None) -> None:
    """The starter holds the write end of a pipe whose read end is *fd*; it never writes,
    so the end of the file means the starter is gone, however it ended."""
    if os.read(fd, 1) == b"":
        _starter_gone(parent_pid)


async def _watch_parent(parent_pid: int) -> None:
    """Stop when the process that started the broker is gone.

    A SIGKILLed ``plantwatch up`` cannot stop its broker, and the broker runs in a session
    of its own (so a terminal's Ctrl-C reaches the stack first): without this it would
    keep its port and run on with no owner. Re-parenting shows in ``getppid``; the lifeline
    pipe (``--lifeline-fd``) tells at once, this poll is the fallback (a child the starter
    forked can hold the pipe open).
    """
    while os.getppid() == parent_pid:
        await asyncio.sleep(0.5)
    _starter_gone(parent_pid)


def _starter_gone(parent_pid: int | None) -> None:
    """Exit at once, without a graceful shutdown: the subscribers the messages here are
    held for (the rules runner) died with the starter, and every PUBACK sent from now on
    would tell a device to delete a reading that nobody keeps. A graceful shutdown went on
    acknowledging for a few hundred milliseconds."""
    who = f" (pid {parent_pid})" if parent_pid is not None else ""
    log.warning("the process that started this broker%s is gone; stopping now", who)
    logging.shutdown()
    os._exit(1)


def _reload(access: AccessControl) -> None:
    """SIGHUP re-reads the credentials and ACL, as mosquitto does; a bad file keeps the
    previous policy rather than stopping the broker."""
    try:
        access.reload()
    except Exception:
        log.exception(
            "reloading %s and %s failed; the previous policy stays",
            access.passwd_file,
            access.acl_file,
        )
    else:
        log.warning("reloaded credentials and ACL")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plantwatch-amqtt")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-packet-bytes", type=int, default=0, help="0: no limit")
    parser.add_argument(
        "--max-payload-bytes",
        type=int,
        default=0,
        help="close the connection of a PUBLISH whose payload is larger (0: no limit)",
    )
    parser.add_argument(
        "--max-publishes-per-s",
        type=int,
        default=0,
        help="drop a connection's publishes past this many a second, unacknowledged, as IoT "
        f"Core does past {MAX_PUBLISHES_PER_S} (0: no limit; --service-client ids exempt)",
    )
    parser.add_argument("--passwd", type=Path, help="mosquitto-format password file")
    parser.add_argument("--acl", type=Path, help="mosquitto-format ACL file (with --passwd)")
    parser.add_argument(
        "--parent-pid", type=int, help="stop when this process (the broker's starter) is gone"
    )
    parser.add_argument(
        "--hold-publishes-s",
        type=float,
        default=0.0,
        help="hold every PUBLISH until SIGUSR1 (the starter's subscribers are in) or this long",
    )
    parser.add_argument(
        "--durable-subscriber",
        metavar="CLIENT_ID",
        help="PUBACK a device's QoS 1 publish on a topic this client subscribes to only "
        "once this client has PUBACKed its copy (the rules runner: once it is on disk)",
    )
    parser.add_argument(
        "--shadow-service",
        metavar="CLIENT_ID",
        help="the shadow service's client id: it gets no will sent to a shadow request topic, "
        "as AWS's Device Shadow service ignores those",
    )
    parser.add_argument(
        "--service-client",
        action="append",
        metavar="CLIENT_ID",
        help="a client id of the stack's own services (repeatable): not held to the bound on "
        "what the broker keeps for a connection that falls behind; with the per-run secret "
        f"in ${SERVICE_SECRET_ENV}, only a CONNECT with user name = this id and that "
        "password may use it",
    )
    parser.add_argument(
        "--lifeline-fd",
        type=int,
        help="read end of a pipe the starter holds open: stop at once when it closes",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s: %(message)s"
    )
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    global _MAX_PAYLOAD_BYTES, _MAX_PUBLISHES_PER_S, _SHADOW_SERVICE, _SERVICE_CLIENTS
    global _SERVICE_SECRET
    _MAX_PAYLOAD_BYTES = max(args.max_payload_bytes, 0)
    _MAX_PUBLISHES_PER_S = max(args.max_publishes_per_s, 0)
    _SHADOW_SERVICE = args.shadow_service or None
    _SERVICE_CLIENTS = frozenset(args.service_client or ())
    _SERVICE_SECRET = os.environ.pop(SERVICE_SECRET_ENV, None) or None
    strict_fixed_headers(max(args.max_packet_bytes, 0))
    whole_packets()
    strict_utf8_topics()
    strict_connect()
    iot_core_connect_limits()
    if (args.passwd is None) != (args.acl is None):
        parser.error("--passwd and --acl go together")
    access = AccessControl(args.passwd, args.acl) if args.passwd else None
    asyncio.run(
        _serve(
            args.host,
            args.port,
            access,
            args.parent_pid,
            args.lifeline_fd,
            args.hold_publishes_s,
            args.durable_subscriber,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
