"""The embedded amqtt broker redelivers a dead subscriber's unacknowledged QoS 1 messages.

MQTT-4.4.0-1: on resuming a persistent session the server resends every PUBLISH not yet
acknowledged, with DUP set. The subscriber here is plain paho with manual acks, like the rules
runner; it "dies" by closing its socket without DISCONNECT, as a SIGKILLed process does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ingest_helpers import LoopedSubscriber

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
