"""A device that connects the moment ``plantwatch up``'s broker port accepts and publishes
QoS 1 readings from then on: every reading the broker acknowledged lands, on the first
start of a data folder and on a restart of it. Before the stack started mosquitto in two
phases (``EmbeddedBroker(state_dir=...)``), mosquitto acknowledged the first second of
readings and routed them to nobody: the rules runner had not subscribed yet."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud.runtime.broker import free_port
from cloud.runtime.layout import DataLayout
from cloud.runtime.stack import LocalStack, StackConfig
from edge.clock import SystemClock

pytestmark = [pytest.mark.slow]


class EarlyDevice(threading.Thread):
    """Waits for *port* to accept, connects, and publishes a QoS 1 reading (seq from
    *first_seq*) every 20 ms until stopped; ``acked`` holds the PUBACKed seq numbers."""

    def __init__(self, port: int, first_seq: int) -> None:
        super().__init__(daemon=True)
        self.port, self.seq = port, first_seq
        self.acked: list[int] = []
        self.sent_before_ready = 0
        self.ready = threading.Event()
        """Set by the test once the stack's ``start`` returned."""
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.005)
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="early", protocol=mqtt.MQTTv311
        )
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        stop_at = None
        while stop_at is None or time.monotonic() < stop_at:
            if stop_at is None and self.ready.is_set():
                stop_at = time.monotonic() + 0.5
            payload = {
                "v": 1,
                "site": "s1",
                "asset": "pump-01",
                "sender": "early",
                "seq": self.seq,
                "samples": [{"ts": int(time.time() * 1000), "values": {"a": float(self.seq)}}],
            }
            info = client.publish(
                "dt/plantwatch/s1/pump-01/telemetry", json.dumps(payload).encode(), qos=1
            )
            info.wait_for_publish(10)
            if info.is_published():
                self.acked.append(self.seq)
                self.sent_before_ready += not self.ready.is_set()
            self.seq += 1
            time.sleep(0.02)
        client.disconnect()
        client.loop_stop()
        self.done.set()


def landed(data: DataLayout) -> set[int]:
    with sqlite3.connect(data.spool_db) as db:
        keys = [row[0] for row in db.execute("select msg_key from seen")]
    return {int(key.rsplit(":", 1)[1]) for key in keys}


def run_once(data: DataLayout, first_seq: int) -> EarlyDevice:
    port = free_port()
    device = EarlyDevice(port, first_seq)
    device.start()
    stack = LocalStack(
        StackConfig(data=data, grace_s=0.0, broker_kind="mosquitto", port=port), SystemClock()
    )
    try:
        stack.start()
        device.ready.set()
        assert device.done.wait(30)
        deadline = time.monotonic() + 10
        # landed or not, the assertions below name the missing ones
        while time.monotonic() < deadline and stack.batcher.stats["readings"] < len(device.acked):
            time.sleep(0.05)
    finally:
        stack.stop()
    return device


ATTEMPTS = 3
"""Starts tried until the device got a reading acknowledged before ``start`` returned: on a
loaded machine its thread can miss that moment, and then a start tests nothing. Every
start's acknowledged readings must land, whichever attempt it is."""


def run_until_early(
    folder: Callable[[int], DataLayout], first_seq: int
) -> tuple[DataLayout, EarlyDevice]:
    """Starts on ``folder(attempt)`` until one is early; a first start gets a new folder
    each attempt, a restart the same one again."""
    for attempt in range(ATTEMPTS):
        data = folder(attempt)
        device = run_once(data, first_seq)
        assert set(device.acked) <= landed(data), sorted(set(device.acked) - landed(data))
        if device.sent_before_ready > 0:
            return data, device
        first_seq = device.seq
    pytest.fail(f"in {ATTEMPTS} starts the device never published before the stack was ready")


@pytest.mark.mosquitto
def test_every_reading_mosquitto_acknowledged_at_startup_lands(tmp_path: Path) -> None:
    folders = [DataLayout.at(tmp_path / f"data-{k}") for k in range(ATTEMPTS)]
    data, first = run_until_early(folders.__getitem__, 1)
    # a restart: the broker's state file exists now
    run_until_early(lambda _attempt: data, first.seq)
