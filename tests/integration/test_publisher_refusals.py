"""A publish no broker takes is refused (RefusedError), so the detector outbox keeps it as
a dead letter at once instead of retrying it 50 times."""

from __future__ import annotations

import pytest

from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.runtime.broker import EmbeddedBroker
from edge.errors import RefusedError


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("", "Invalid topic"),
        ("cmd/+/req", "cannot contain wildcards"),
        ("cmd/#", "cannot contain wildcards"),
        ("x" * 65_536, "too long"),
    ],
)
def test_a_topic_no_broker_takes_is_refused_not_retried(
    broker: EmbeddedBroker, topic: str, why: str
) -> None:
    # paho raises ValueError for these before sending: the same every time; the message
    # is one line saying what the MQTT client found
    pub = MqttPublisher(broker.url, "t-bad-topic")
    try:
        with pytest.raises(RefusedError, match=f"the MQTT client refuses it: [^;]*{why}") as e:
            pub.publish(topic, b"{}")
        assert "\n" not in str(e.value) and len(str(e.value)) < 200
    finally:
        pub.close()
