"""A publish while the publisher's link is down: a QoS 0 one is counted and logged as
dropped (QoS 0 is at most once, like the edge agent's dropped readings, never silent), a
QoS 1 one raises the transient error its callers retry (the rules runner leaves the message
unacknowledged, the detector outbox keeps it), never a bare RuntimeError."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from waiting import wait_for

from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.rules.actions import is_transient
from cloud.runtime.broker import EmbeddedBroker
from edge.errors import PlantwatchError


@pytest.fixture
def cut_off() -> Iterator[MqttPublisher]:
    broker = EmbeddedBroker("amqtt").start()
    publisher = MqttPublisher(broker.url, "t-pub-cut-off", timeout=2.0)
    try:
        broker.kill()
        wait_for(lambda: not publisher._client.is_connected())
        yield publisher
    finally:
        publisher.close()
        broker.close()


def test_a_qos0_publish_while_disconnected_is_counted_and_logged_as_dropped(
    cut_off: MqttPublisher, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cloud.adapters.local.mqtt_publisher"):
        cut_off.publish("alerts/a1", b"{}", qos=0)
        cut_off.publish("alerts/a1", b"{}", qos=0)
    assert cut_off.counts["dropped_qos0"] == 2
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 1, lines  # at most one line a minute, as the edge agent logs drops
    assert "QoS 0" in lines[0] and "not connected" in lines[0]


def test_a_qos1_publish_while_disconnected_is_a_transient_error(cut_off: MqttPublisher) -> None:
    with pytest.raises(PlantwatchError, match="not connected") as raised:
        cut_off.publish("alerts/a1", b"{}", qos=1)
    assert is_transient(raised.value)
    assert "\n" not in str(raised.value)
    assert cut_off.counts["dropped_qos0"] == 0
