"""kill -9 of ``plantwatch up`` mid-ingest loses no reading its broker acknowledged.

A paho device publishes QoS 1 (persistent session, paho's default in-flight window) to the
embedded broker (amqtt or mosquitto) of ``plantwatch up``; ``up`` is SIGKILLed halfway (its broker stops with
it) and started again on the same data directory and port; the device reconnects and resends
what was not acknowledged. Every reading the device got a PUBACK for must be in the input
CSVs once ``up`` has stopped. Before end-to-end acknowledgement the broker PUBACKed a reading
as soon as it was routed in memory, and the readings the rules runner had not yet spooled
were lost (4 to 24 of 3,000 in a kill probe).
"""

from __future__ import annotations

import csv
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from ingest_helpers import start_up
from waiting import wait_until

from cloud.runtime.broker import free_port
from edge import wire

pytestmark = pytest.mark.slow

READINGS = 1500
TOPIC = "dt/plantwatch/s1/pump-01/telemetry"


def _start(data: Path, port: int, broker: str = "amqtt") -> subprocess.Popen[str]:
    """``up`` without IoT Core's 100 publishes a second per connection: the device here
    publishes as fast as it can, to have many readings in flight at the kill."""
    return start_up(
        data,
        "--port",
        str(port),
        "--broker",
        broker,
        "--no-dashboard",
        "--max-publishes-per-s",
        "0",
    )


def _port_free(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return True
    return False


def _landed(data: Path) -> set[int]:
    """The sequence numbers in the input CSVs (each reading's ``n`` value is its number)."""
    seqs: set[int] = set()
    for path in (data / "buckets" / "plantwatch" / "input").rglob("*.csv"):
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                if row.get("n"):
                    seqs.add(int(float(row["n"])))
    return seqs


def _message(seq: int, now_ms: int) -> bytes:
    sample = wire.Sample(now_ms - 60_000 + seq * 10, {"n": float(seq)})
    return wire.encode(wire.Telemetry("s1", "pump-01", "kill-dev", seq, (sample,)))


@pytest.mark.parametrize(
    "broker", ["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)]
)
def test_a_sigkilled_up_loses_no_acknowledged_reading(tmp_path: Path, broker: str) -> None:
    """mosquitto cannot delay a PUBACK until the runner's; it keeps what it acknowledged
    in its state file instead (``DATA/broker``), which its guard has it write when ``up``
    is gone (before: SIGKILL, and 50 to 100 of 6,000 readings lost in a kill probe)."""
    data = tmp_path / "data"
    port = free_port("127.0.0.1")
    now_ms = int(time.time() * 1000)
    acked: set[int] = set()
    mids: dict[int, int] = {}
    lock = threading.Lock()

    def on_publish(_c: object, _u: object, mid: int, _rc: object, _p: object) -> None:
        with lock:
            if mid in mids:
                acked.add(mids[mid])

    proc = _start(data, port, broker)
    device = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id="kill-dev",
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    device.max_queued_messages_set(0)
    device.reconnect_delay_set(0.2, 1)
    device.on_publish = on_publish
    device.connect("127.0.0.1", port, keepalive=30)
    device.loop_start()
    try:
        for seq in range(1, READINGS + 1):
            info = device.publish(TOPIC, _message(seq, now_ms), qos=1)
            with lock:
                mids[info.mid] = seq
            if seq == READINGS // 2:
                # WHEN up is SIGKILLed mid-ingest, its broker goes with it
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                assert wait_until(lambda: _port_free(port), 15, poll=0.1), "the broker outlived up"
                # AND up is started again on the same data directory and port
                proc = _start(data, port, broker)
        # THEN the device gets every reading acknowledged in the end (it resends the rest)
        assert wait_until(lambda: len(acked) == READINGS, 120, poll=0.1), (
            f"{len(acked)} of {READINGS} acked"
        )
    finally:
        device.disconnect()
        device.loop_stop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    assert proc.returncode == 0
    # AND every acknowledged reading is in the input CSVs
    landed = _landed(data)
    lost = sorted(acked - landed)
    assert not lost, f"{len(lost)} acknowledged readings lost: {lost[:20]}"


def test_a_reading_the_runner_quarantines_is_still_acknowledged(tmp_path: Path) -> None:
    # GIVEN up on amqtt, whose broker PUBACKs a telemetry reading only after the runner's
    data = tmp_path / "data"
    port = free_port("127.0.0.1")
    proc = _start(data, port)
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="quarantine-dev")
    device.connect("127.0.0.1", port, keepalive=30)
    device.loop_start()
    try:
        # WHEN a device publishes a payload the runner cannot decode, then a good reading
        bad = device.publish(TOPIC, b"not a reading", qos=1)
        good = device.publish(TOPIC, _message(1, int(time.time() * 1000)), qos=1)
        # THEN both are PUBACKed: the runner acks what it quarantined (after committing it)
        assert wait_until(lambda: bad.is_published() and good.is_published(), 30, poll=0.1)
    finally:
        device.disconnect()
        device.loop_stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    quarantine = data / "buckets" / "plantwatch" / "quarantine"
    assert any(quarantine.rglob("*")), "the bad payload was not quarantined"
    assert _landed(data) == {1}
