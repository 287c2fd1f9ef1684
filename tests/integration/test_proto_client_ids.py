"""Two connections with one client id (iot-core-rules-and-limits §2: "A second connection
with the same ID disconnects the first"; MQTT 3.1.1 MQTT-3.1.4-2). The first connection must
learn that it lost the id, so it can connect again and take its session back; it must never
stay connected while the broker has handed its subscriptions away."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from raw_mqtt import RawClient
from waiting import wait_for

from cloud.adapters.local import FsObjectStore
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.runner import RulesRunner, load_rules
from cloud.runtime.broker import EmbeddedBroker
from edge import wire
from edge.clock import ManualClock

T0 = 1652443800
TOPIC = "dt/plantwatch/s1/pump/telemetry"
MOSQUITTO = pytest.param("mosquitto", marks=pytest.mark.mosquitto)


def on_mosquitto(client: str) -> object:
    return pytest.param("mosquitto", client, marks=pytest.mark.mosquitto)


@pytest.fixture(params=["amqtt", MOSQUITTO])
def broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(request.param) as running:
        yield running


def telemetry(seq: int) -> bytes:
    sample = (wire.Sample((T0 + 1 + seq) * 1000, {"x": float(seq)}),)
    return wire.encode(wire.Telemetry("s1", "pump", "dev", seq, sample))


@pytest.mark.parametrize("clean_session", [True, False])
def test_a_second_connection_with_the_same_id_disconnects_the_first(
    broker: EmbeddedBroker, clean_session: bool
) -> None:
    first = RawClient(broker.host, broker.port, client_id="same-id")
    first.client.reconnect_delay_set(30, 30)  # stay away once dropped: one takeover to see
    assert first.subscribe(["dt/#"]) == [True]
    second = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="same-id", clean_session=clean_session
    )
    second.connect(broker.host, broker.port, keepalive=30)
    second.loop_start()
    try:
        first.wait(lambda: first.disconnects >= 1, "the broker dropping the first connection")
    finally:
        second.disconnect()
        second.loop_stop()
        first.client.loop_stop()


@pytest.mark.parametrize(
    ("kind", "client"),
    [("amqtt", "paho"), on_mosquitto("paho"), on_mosquitto("crt")],
)
def test_a_client_taking_the_rules_runners_id_does_not_silence_it(
    kind: str, client: str, tmp_path: Path
) -> None:
    """A careless device that reuses the runner's client id for one short clean session:
    the runner is dropped, reconnects, resumes its session, and every reading published
    afterwards is taken in. On amqtt the runner used to stay connected with its
    subscriptions deleted, so later telemetry was acknowledged to the device and went to no
    one."""
    store = FsObjectStore(tmp_path / "bucket")
    batcher = Batcher(store, BatcherConfig(), ManualClock(T0), spool_path=str(tmp_path / "s.db"))
    broker = EmbeddedBroker(kind).start()
    runner = RulesRunner(
        broker.url, load_rules(), batcher, ManualClock(T0), client_id="rules", client=client
    )
    runner.start()
    device = RawClient(broker.host, broker.port)
    try:
        assert device.publish(TOPIC, telemetry(0))
        wait_for(lambda: batcher.stats["readings"] == 1)
        assert runner.transport is not None
        generation = runner.transport.generation
        intruder = RawClient(broker.host, broker.port, client_id="rules")
        intruder.close()
        # readings sent while no session holds the runner's subscriptions go to no one, on
        # IoT Core too: wait for the runner to be back, subscribed
        wait_for(lambda: runner.transport.generation > generation and runner.transport.ready)
        # the same message again until it lands (the batcher skips a redelivery): then the
        # broker has the runner's subscription
        wait_for(lambda: device.publish(TOPIC, telemetry(1)) and batcher.stats["readings"] == 2)
        for seq in range(2, 6):
            assert device.publish(TOPIC, telemetry(seq))
        wait_for(lambda: batcher.stats["readings"] == 6, timeout=15)
    finally:
        device.close()
        runner.stop()
        broker.close()
