"""A detector alarm reaches a device: iotTopicPublish to the shadow update topic, real broker."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt

from cloud.adapters.local import InMemoryNotifier, InMemoryStateStore
from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.detectors import DetectorEngine, default_detector_paths, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from cloud.runtime.broker import EmbeddedBroker, parse_broker_url
from edge.clock import ManualClock
from edge.wire import shadow_topic


def test_alarm_publishes_desired_safe_mode_to_the_shadow(broker: EmbeddedBroker) -> None:
    topic = shadow_topic("pump-07", "update")
    received: list[tuple[str, bytes]] = []
    got = threading.Event()
    subscribed = threading.Event()
    address = parse_broker_url(broker.url)
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-detector-sub")
    sub.on_connect = lambda c, *_: c.subscribe(topic, 1)
    sub.on_subscribe = lambda *_a: subscribed.set()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append((msg.topic, msg.payload))
        if msg.topic == topic:
            got.set()

    sub.on_message = on_message
    sub.connect(address.host, address.port)
    sub.loop_start()
    publisher = MqttPublisher(broker.url, "t-detector-pub")
    try:
        assert subscribed.wait(10)
        probe = shadow_topic("probe", "update")
        sub.subscribe(probe, 1)
        time.sleep(0.2)
        publisher.publish(probe, b"{}")
        deadline = time.monotonic() + 5
        while not any(t == probe for t, _ in received) and time.monotonic() < deadline:
            time.sleep(0.05)
        # A broker that drops $aws/ topics is exactly the regression this test exists for.
        assert any(t == probe for t, _ in received), (
            "the broker dropped a publish to a $aws/ shadow topic; detectors cannot command "
            "devices (cloud/runtime/amqtt_server.py lets $aws/ through)"
        )
        received.clear()
        got.clear()
        notifier = InMemoryNotifier()
        model_path, input_path = default_detector_paths()
        engine = DetectorEngine(
            load_detector_model(model_path),
            [load_input(input_path)],
            InMemoryStateStore(),
            ManualClock(),
            LocalActionSink(notifier, publisher),
        )
        for minute in range(3):
            engine.put_message(
                "AnomalyResults",
                {
                    "asset": "pump-07",
                    "thing": "pump-07",
                    "timestamp": f"2026-01-01T00:0{minute}:00.000000",
                    "prediction": 1,
                    "anomaly_score": 0.9,
                },
            )
        assert got.wait(10)
        assert received == [(topic, b'{"state":{"desired":{"mode":"safe"}}}')]
        assert json.loads(received[0][1])["state"]["desired"]["mode"] == "safe"
        assert [n.channel for n in notifier.sent] == ["email", "sms"]
    finally:
        publisher.close()
        sub.loop_stop()
        sub.disconnect()
