"""The embedded broker's log reaches the operator: `plantwatch up` relays each line it
logs (a refused publish, a refused connection) instead of leaving it in a temporary folder,
at most LOG_LINES_PER_MINUTE a minute."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from waiting import wait_for

from cloud.runtime.broker import LOG_LINES_PER_MINUTE, EmbeddedBroker, relay_log


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_past_the_minutes_budget_are_counted_not_shown(tmp_path: Path) -> None:
    clock = Clock()
    shown: list[str] = []
    lines = [f"refused {i}\n".encode() for i in range(LOG_LINES_PER_MINUTE + 5)]

    def stream() -> Iterator[bytes]:
        yield from lines
        clock.now = 61.0
        yield b"after a minute\n"

    relay_log(stream(), tmp_path / "broker.log", shown.append, clock=clock)

    assert shown == [
        *(f"refused {i}" for i in range(LOG_LINES_PER_MINUTE)),
        f"5 broker log lines not shown (at most {LOG_LINES_PER_MINUTE} a minute); "
        f"{tmp_path / 'broker.log'} has them all",
        "after a minute",
    ]
    assert (tmp_path / "broker.log").read_bytes() == b"".join(lines) + b"after a minute\n"


def test_a_failing_listener_does_not_stop_the_copy(tmp_path: Path) -> None:
    def broken(_line: str) -> None:
        raise RuntimeError("terminal gone")

    relay_log(io.BytesIO(b"a\nb\nc\n"), tmp_path / "broker.log", broken)

    assert (tmp_path / "broker.log").read_bytes() == b"a\nb\nc\n"


def test_a_publish_the_broker_refuses_is_told_with_its_reason() -> None:
    lines: list[str] = []
    broker = EmbeddedBroker("amqtt", on_log=lines.append).start()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-long-topic")
    gone = threading.Event()
    client.on_disconnect = lambda *_a: gone.set()
    try:
        client.connect(broker.host, broker.port)
        client.loop_start()
        client.publish("dt/plantwatch/s1/" + "x" * 300 + "/telemetry", b"{}", qos=1)
        assert gone.wait(10)
        wait_for(lambda: any("publish refused" in line for line in lines), timeout=10)
    finally:
        client.loop_stop()
        broker.close()
    refused = next(line for line in lines if "publish refused" in line)
    assert "256" in refused and "connection closed" in refused
    assert refused.startswith("WARNING: client 't-long-topic': publish refused")


def test_lines_held_back_when_the_broker_stops_are_counted(tmp_path: Path) -> None:
    # a burst right before the broker exits: no later line comes to report the rest
    shown: list[str] = []
    lines = [f"refused {i}\n".encode() for i in range(LOG_LINES_PER_MINUTE + 3)]

    relay_log(iter(lines), tmp_path / "broker.log", shown.append, clock=Clock())

    assert shown[:-1] == [f"refused {i}" for i in range(LOG_LINES_PER_MINUTE)]
    assert shown[-1].startswith("3 broker log lines not shown")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_log_file_that_cannot_be_written_does_not_silence_the_relay() -> None:
    # /dev/full fails every write with ENOSPC, as a full temp folder would: the operator
    # must still get the lines (before, each line was skipped and the relay then crashed)
    shown: list[str] = []

    relay_log(io.BytesIO(b"a\nb\n"), Path("/dev/full"), shown.append)

    assert shown == ["a", "b"]


def test_an_mqtt5_client_refused_by_amqtt_is_told_to_the_operator() -> None:
    lines: list[str] = []
    broker = EmbeddedBroker("amqtt", on_log=lines.append).start()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="v5-dev", protocol=mqtt.MQTTv5)
    refused = threading.Event()
    client.on_connect = lambda *_a: refused.set()
    try:
        client.connect(broker.host, broker.port)
        client.loop_start()
        assert refused.wait(10)
        wait_for(lambda: any("CONNECT refused" in line for line in lines), timeout=10)
    finally:
        client.loop_stop()
        broker.close()
    line = next(line for line in lines if "CONNECT refused" in line)
    assert ": 5 (MQTT protocol level)" in line and "--broker mosquitto" in line
