"""The embedded broker is a real MQTT broker: QoS 1 round trip, kill and restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

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


@pytest.mark.parametrize("kind", ["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def test_broker_stops_when_its_starter_is_killed(kind: str) -> None:
    """A SIGKILLed ``plantwatch up`` cannot stop its broker; the broker must not outlive it."""
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from cloud.runtime.broker import EmbeddedBroker\n"
            f"broker = EmbeddedBroker({kind!r}).start()\n"
            "print(broker._proc.pid, broker._workdir, flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    workdir = ""
    try:
        pid, workdir = starter.stdout.readline().split(maxsplit=1)
        broker_pid = int(pid)
        assert _alive(broker_pid)
        starter.kill()
        starter.wait(10)
        deadline = time.monotonic() + 15
        while _alive(broker_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(broker_pid), "the broker outlived the process that started it"
    finally:
        starter.kill()
        if workdir.strip():
            shutil.rmtree(workdir.strip(), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for our purpose
        return stat.read().split(") ", 1)[1][0] != "Z"
