"""With ``--auth``, what a device may not publish: IoT Core closes the connection of a
client whose publish its policy refuses (lifecycle disconnect reason ``AUTH_ERROR``), before
any PUBACK, so the device keeps what it sent; and a will needs ``iot:Publish`` on its topic.
On amqtt (``plantwatch up``'s default broker) a refused publish was acknowledged and
dropped, so the edge agent let go of readings no one got, and a will went out unchecked,
so a device could forge another device's messages by dropping its connection."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from raw_mqtt import RawClient

from cloud.runtime.broker import EmbeddedBroker
from cloud.runtime.broker_auth import AuthStore
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.wire import Sample

MOSQUITTO = pytest.param("mosquitto", marks=pytest.mark.mosquitto)


@dataclass
class Secured:
    broker: EmbeddedBroker
    store: AuthStore
    password: str

    def rules(self) -> RawClient:
        password = self.store.service_password("plantwatch-rules")
        client = RawClient(
            self.broker.host, self.broker.port, username="plantwatch-rules", password=password
        )
        client.subscribe(["dt/plantwatch/#"])
        return client


@pytest.fixture(scope="module", params=["amqtt", MOSQUITTO])
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Secured]:
    store = AuthStore(tmp_path_factory.mktemp("auth") / "auth").ensure()
    password = store.add_device("pump-01", "s1")
    with EmbeddedBroker(request.param, auth=store) as broker:
        yield Secured(broker, store, password)


def test_an_agent_sending_where_its_policy_forbids_keeps_its_readings(
    secured: Secured, tmp_path: Path
) -> None:
    """The agent is told site s2; its credential is for s1. Nothing may arrive, and the
    agent must not count any reading as sent: amqtt now closes the connection (3.1.1, no
    PUBACK), mosquitto answers MQTT 5's PUBACK with "not authorized"."""
    rules = secured.rules()
    config = AgentConfig(
        site="s2",
        sender="pump-01",
        broker_url=secured.broker.url,
        queue_path=str(tmp_path / "queue.db"),
        assets=("pump-01",),
        shadow=False,
        max_batch_delay_s=0.05,
        backoff_min_s=0.2,
        backoff_max_s=0.5,
        username="pump-01",
        password=secured.password,
    )
    agent = Agent(config, SystemClock())
    agent.start()
    try:
        for i in range(10):
            agent.submit("pump-01", [Sample(1_700_000_000_000 + i, {"x": float(i)})])
        deadline = time.monotonic() + 3
        while agent.status()["last_error"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        rules.quiet(0.5)
        status = agent.status()
    finally:
        agent.stop(flush=False)
        rules.close()
    assert status["last_error"] is not None
    assert status["sent"] == 0 and status["queue_depth"] == 10, status
    assert [t for t, _p in rules.messages if t.endswith("/telemetry")] == []


def test_amqtt_closes_the_connection_of_a_publish_the_policy_refuses(tmp_path: Path) -> None:
    """mosquitto acknowledges and drops it instead (3.1.1; MQTT 5 PUBACK "not authorized"),
    which docs/protocol.md lists among the local brokers' differences."""
    store = AuthStore(tmp_path / "auth").ensure()
    secured = Secured(EmbeddedBroker("amqtt", auth=store), store, store.add_device("pump-01", "s1"))
    secured.broker.start()
    rules = secured.rules()
    device = RawClient(
        secured.broker.host, secured.broker.port, username="pump-01", password=secured.password
    )
    device.client.reconnect_delay_set(30, 30)
    try:
        assert device.publish("dt/plantwatch/s1/pump-01/telemetry", b"own")
        info = device.client.publish("dt/plantwatch/s1/pump-02/telemetry", b"forged", qos=1)
        device.wait(lambda: device.disconnects >= 1, "the broker closing the connection")
        assert not info.is_published(), "no PUBACK"
        rules.wait_for_message("dt/plantwatch/s1/pump-01/telemetry")
        rules.quiet(0.3)
        assert [t for t, _p in rules.messages] == ["dt/plantwatch/s1/pump-01/telemetry"]
    finally:
        device.client.loop_stop()
        rules.close()
        secured.broker.close()


def connect_with_will(secured: Secured, topic: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pump-01")
    client.username_pw_set("pump-01", secured.password)
    client.will_set(topic, b"will of pump-01", qos=1)
    client.connect(secured.broker.host, secured.broker.port, keepalive=30)
    client.loop(timeout=1.0)  # read the CONNACK
    return client


def drop_abruptly(client: mqtt.Client) -> None:
    sock = client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.mark.parametrize(
    ("will_topic", "delivered"),
    [
        ("dt/plantwatch/s1/pump-01/status", True),
        ("dt/plantwatch/s1/pump-02/telemetry", False),
        ("dt/plantwatch/s2/pump-01/status", False),
    ],
    ids=["own-status", "other-things-telemetry", "other-site"],
)
def test_a_will_goes_out_only_on_a_topic_the_device_may_publish_to(
    secured: Secured, will_topic: str, delivered: bool
) -> None:
    rules = secured.rules()
    try:
        client = connect_with_will(secured, will_topic)
        drop_abruptly(client)
        if delivered:
            assert rules.wait_for_message(will_topic) == b"will of pump-01"
        else:
            rules.quiet(1.0)
            assert rules.messages == []
    finally:
        rules.close()
