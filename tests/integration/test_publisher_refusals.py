"""A publish no broker takes is refused (RefusedError), so the detector outbox keeps it as
a dead letter at once instead of retrying it 50 times."""

from __future__ import annotations

import pytest

from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.runtime.broker import EmbeddedBroker
from edge.errors import RefusedError


@pytest.mark.parametrize("topic", ["", "cmd/+/req", "cmd/#", "x" * 65_536])
def test_a_topic_no_broker_takes_is_refused_not_retried(broker: EmbeddedBroker, topic) -> None:
    # paho raises ValueError for these before sending: the same every time
    pub = MqttPublisher(broker.url, "t-bad-topic")
    try:
        with pytest.raises(RefusedError, match="not a topic one can publish to"):
            pub.publish(topic, b"{}")
    finally:
        pub.close()
