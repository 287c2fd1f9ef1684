"""The embedded broker is a real MQTT broker: QoS 1 round trip, kill and restart."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt

from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.runtime.broker import EmbeddedBroker, parse_broker_url


def _subscribe(url: str, topic: str, received: list, event: threading.Event) -> mqtt.Client:
    address = parse_broker_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-sub")
    subscribed = threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_connect = lambda c, *_: c.subscribe(topic, 1)

    def on_message(_c, _u, msg):
        received.append((msg.topic, msg.payload))
        event.set()

    client.on_message = on_message
    client.connect(address.host, address.port)
    client.loop_start()
    assert subscribed.wait(10)
    return client


def test_qos1_round_trip(broker: EmbeddedBroker) -> None:
    received: list = []
    got = threading.Event()
    sub = _subscribe(broker.url, "dt/plantwatch/+/+/telemetry", received, got)
    pub = MqttPublisher(broker.url, "t-pub")
    pub.publish("dt/plantwatch/s1/a1/telemetry", b'{"x":1}')
    assert got.wait(10)
    assert received == [("dt/plantwatch/s1/a1/telemetry", b'{"x":1}')]
    pub.close()
    sub.loop_stop()


def test_kill_and_restart_keeps_the_port() -> None:
    broker = EmbeddedBroker("amqtt").start()
    try:
        port = broker.port
        broker.kill()
        assert not broker.running
        broker.start()
        assert broker.running and broker.port == port
        MqttPublisher(broker.url, "t-after-restart").close()
    finally:
        broker.stop()
