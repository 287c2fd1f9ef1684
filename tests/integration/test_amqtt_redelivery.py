"""The embedded amqtt broker redelivers a dead subscriber's unacknowledged QoS 1 messages.

MQTT-4.4.0-1: on resuming a persistent session the server resends every PUBLISH not yet
acknowledged, with DUP set. The subscriber here is plain paho with manual acks, like the rules
runner; it "dies" by closing its socket without DISCONNECT, as a SIGKILLed process does.
"""

from __future__ import annotations

import heapq
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from ingest_helpers import LoopedSubscriber
from mqtt_frames import remaining_length, split_packets

from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.runtime.broker import EmbeddedBroker

TOPIC = "dt/plantwatch/s1/pump/telemetry"
# amqtt 0.12.1 gives up waiting for a PUBACK after this many seconds (handler.py)
AMQTT_PUBACK_TIMEOUT_S = 5.0


@pytest.fixture
def amqtt_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("amqtt") as running:
        yield running


class Subscriber(LoopedSubscriber):
    """A subscriber of TOPIC the test loops itself, so the test decides when it dies."""

    def subscribe(self, topic: str = TOPIC) -> None:
        super().subscribe(topic)


def _publish(broker: EmbeddedBroker, payloads: list[bytes]) -> None:
    pub = MqttPublisher(broker.url, "t-redeliver-pub")
    try:
        for payload in payloads:
            pub.publish(TOPIC, payload)
    finally:
        pub.close()


def test_unacked_messages_come_back_after_the_subscriber_dies(
    amqtt_broker: EmbeddedBroker,
) -> None:
    # GIVEN a persistent-session subscriber that received 5 QoS 1 messages and acked none
    first = Subscriber(amqtt_broker, "t-redeliver")
    first.subscribe()
    before = [b"m%d" % i for i in range(5)]
    _publish(amqtt_broker, before)
    assert first.loop_until(lambda: len(first.received) == 5)
    assert first.payloads() == before
    # WHEN it dies without DISCONNECT and 3 more are published while it is away
    first.kill()
    during = [b"m%d" % i for i in range(5, 8)]
    _publish(amqtt_broker, during)
    # AND it comes back with the same client id and a persistent session, acking everything
    second = Subscriber(amqtt_broker, "t-redeliver")
    second.client.on_message = lambda c, _u, msg: (second.received.append(msg), c.ack(msg.mid, 1))
    try:
        second.loop_until(lambda: len(second.received) >= 8, timeout=10)
        second.loop_for(1.0)  # a duplicate beyond the 8 would show up here
    finally:
        second.close()
    # THEN the session was resumed and each message arrives exactly once more, the 5 resent ones
    # flagged DUP
    assert second.session_present is True
    assert sorted(second.payloads()) == sorted(before + during)
    assert {m.payload for m in second.received if m.dup} == set(before)


def test_a_late_ack_counts_and_a_timed_out_message_is_still_redelivered(
    amqtt_broker: EmbeddedBroker,
) -> None:
    # GIVEN a subscriber that holds 2 messages unacknowledged past the broker's PUBACK timeout
    first = Subscriber(amqtt_broker, "t-redeliver-late")
    first.subscribe()
    _publish(amqtt_broker, [b"acked-late", b"never-acked"])
    assert first.loop_until(lambda: len(first.received) == 2)
    first.loop_for(AMQTT_PUBACK_TIMEOUT_S + 1.0)
    # WHEN it then acks only the first and dies
    acked = next(m for m in first.received if m.payload == b"acked-late")
    first.client.ack(acked.mid, 1)
    first.loop_for(0.5)
    first.kill()
    # AND it comes back on the same session
    second = Subscriber(amqtt_broker, "t-redeliver-late")
    second.client.on_message = lambda c, _u, msg: (second.received.append(msg), c.ack(msg.mid, 1))
    try:
        second.loop_until(lambda: len(second.received) >= 1, timeout=10)
        second.loop_for(1.0)
    finally:
        second.close()
    # THEN only the unacknowledged one comes back
    assert second.session_present is True
    assert second.payloads() == [b"never-acked"]


def test_a_redelivery_left_unacknowledged_does_not_hold_back_the_queued_messages(
    amqtt_broker: EmbeddedBroker,
) -> None:
    # GIVEN a subscriber that dies holding one message unacknowledged, and one message
    # queued for its session while it is away
    first = Subscriber(amqtt_broker, "t-redeliver-stall")
    first.subscribe()
    _publish(amqtt_broker, [b"in-flight"])
    assert first.loop_until(lambda: len(first.received) == 1)
    first.kill()
    _publish(amqtt_broker, [b"queued"])
    # WHEN it resumes the session and does not acknowledge the resent message (yet)
    second = Subscriber(amqtt_broker, "t-redeliver-stall")
    try:
        got_both = second.loop_until(
            lambda: len(second.received) >= 2, timeout=AMQTT_PUBACK_TIMEOUT_S - 2.0
        )
    finally:
        second.close()
    # THEN the queued message comes at once, not after the resend's PUBACK timeout
    assert got_both, second.payloads()
    assert second.payloads() == [b"in-flight", b"queued"]
    assert second.received[0].dup


class RawSubscriber:
    """A persistent-session subscriber of TOPIC on a raw socket that PUBACKs the n-th
    PUBLISH it gets *ack_after(n)* seconds after it read it, to the millisecond."""

    def __init__(self, broker: EmbeddedBroker, client_id: str, ack_after: Callable[[int], float]):
        self.ack_after = ack_after
        self.received: list[tuple[bytes, bool]] = []
        self.acked = 0
        self._due: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self.sock = socket.create_connection((broker.host, broker.port), timeout=5)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x00\x00\x3c" + len(cid).to_bytes(2, "big") + cid
        self.sock.sendall(b"\x10" + remaining_length(len(body)) + body)
        self.session_present = self.sock.recv(4)[2] == 1
        if not self.session_present:  # a resumed one keeps its subscription
            topic = TOPIC.encode()
            body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x01"
            self.sock.sendall(b"\x82" + remaining_length(len(body)) + body)
            assert self.sock.recv(5) == b"\x90\x03\x00\x01\x01", "SUBACK granted QoS 1"
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffered = b""
        while not self._stop.is_set():
            wait = max(0.0, self._due[0][0] - time.monotonic()) if self._due else 0.05
            readable, _w, _x = select.select([self.sock], [], [], min(wait, 0.05))
            if readable:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                packets, buffered = split_packets(buffered + chunk)
                for first, body in packets:
                    if first >> 4 == 3:
                        self._take(first, body, time.monotonic())
            while self._due and self._due[0][0] <= time.monotonic():
                _due, packet_id = heapq.heappop(self._due)
                self.sock.sendall(b"\x40\x02" + packet_id.to_bytes(2, "big"))
                self.acked += 1

    def _take(self, first: int, body: bytes, now: float) -> None:
        size = int.from_bytes(body[:2], "big")
        packet_id = int.from_bytes(body[2 + size : 4 + size], "big")
        heapq.heappush(self._due, (now + self.ack_after(len(self.received)), packet_id))
        self.received.append((body[4 + size :], bool(first & 0x08)))

    def wait_until_acked(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.acked >= count, f"acked {self.acked} of {count}"

    def disconnect(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.sendall(b"\xe0\x00")
        self.sock.close()


RACED = 300
"""Enough late PUBACKs to land some in the instant their waiter times out: 4 of 300 did."""


def test_every_puback_counts_from_a_subscriber_that_acks_at_once_or_as_the_wait_times_out(
    amqtt_broker: EmbeddedBroker,
) -> None:
    """MQTT-4.3.2 and MQTT-4.4.0-1: a PUBACKed message is done and is not sent again, also
    on reconnect. One subscriber PUBACKs each message at once, as a fast client does;
    another about when amqtt's 5 s PUBACK wait times out (its n-th PUBACK 5 s after the
    message, -2 ms to +2 ms), so that some come in the instant between the timeout and
    the delivery's task running again. Each gets every message once, and when each comes
    back on its persistent session nothing is redelivered."""
    timeout_s = AMQTT_PUBACK_TIMEOUT_S
    late = RawSubscriber(amqtt_broker, "t-acks-late", lambda n: timeout_s + (n % 41 - 20) / 10_000)
    fast = RawSubscriber(amqtt_broker, "t-acks-fast", lambda _n: 0.0)
    payloads = [b"m%d" % i for i in range(RACED)]
    try:
        _publish(amqtt_broker, payloads)
        fast.wait_until_acked(RACED, 30)
        late.wait_until_acked(RACED, 60)
        time.sleep(0.5)  # the last PUBACKs are read before the DISCONNECT
    finally:
        late.disconnect()
        fast.disconnect()
    for subscriber in (fast, late):
        assert sorted(p for p, _dup in subscriber.received) == sorted(payloads)
    again = [
        RawSubscriber(amqtt_broker, cid, lambda _n: 0.0) for cid in ("t-acks-late", "t-acks-fast")
    ]
    try:
        time.sleep(2.0)  # amqtt resends a resumed session's in-flight messages at once
    finally:
        for subscriber in again:
            subscriber.disconnect()
    assert [s.session_present for s in again] == [True, True]
    assert [s.received for s in again] == [[], []], "acknowledged messages were sent again"
