"""SIGKILL ``plantwatch up`` mid-stream, twice, restart it: the archive still holds every
reading the input CSVs hold, once, and the input CSVs hold every reading sent."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from archive_cells import archive_cells, input_cells
from ingest_helpers import start_up
from waiting import wait_for

from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.runtime.broker import EmbeddedBroker
from edge import wire

pytestmark = pytest.mark.slow


def _start(url: str, data: Path) -> subprocess.Popen[str]:
    return start_up(data, "--broker-url", url, "--archive-flush-s", "0.2")


def _committed(data: Path) -> int:
    try:
        return int((data / "buckets" / "plantwatch" / "archive" / "_committed").read_text())
    except FileNotFoundError:
        return 0


def test_sigkilled_up_loses_no_reading_from_the_archive(tmp_path: Path) -> None:
    data = tmp_path / "data"
    now_s = int(time.time())
    # three pumps, 20 minutes of closed windows at 1 s, two sensors (one sometimes null)
    sent: list[wire.Telemetry] = []
    for n, asset in enumerate(("pump-1", "pump-2", "pump-3")):
        samples = [
            wire.Sample(
                (now_s - 1500 + i) * 1000,
                {"flow": 100.0 + i / 4, "temp": None if i % 9 == n else 40 + (i % 50) / 8},
            )
            for i in range(1200)
        ]
        sent.extend(wire.batch_samples("s1", asset, "gw", 0, samples, per_message=10))
    sent.sort(key=lambda m: (m.seq, m.asset))  # the pumps interleave, as a fleet publishes
    expected = {
        ("s1", m.asset, s.ts_ms, name)
        for m in sent
        for s in m.samples
        for name, v in s.values.items()
        if v is not None
    }
    bucket = data / "buckets" / "plantwatch"
    with EmbeddedBroker("amqtt") as broker:
        publisher = MqttPublisher(broker.url, "crash-test-fleet")
        proc = _start(broker.url, data)
        try:
            thirds = [sent[:120], sent[120:240], sent[240:]]
            for i, part in enumerate(thirds):
                for m in part:
                    publisher.publish(m.topic, wire.encode(m))
                    time.sleep(0.005)
                if i < 2:
                    # WHEN up is killed while windows are flushed and the archive is written
                    before = _committed(data)
                    wait_for(lambda b=before: _committed(data) > b, timeout=30)
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                    # AND started again on the same data directory and broker session
                    proc = _start(broker.url, data)
            wait_for(lambda: set(input_cells(bucket)) == expected, timeout=90)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            publisher.close()
            if proc.poll() is None:
                proc.kill()
    # THEN the input files hold every reading and the archive holds exactly those cells
    files = input_cells(bucket)
    assert set(files) == expected
    assert archive_cells(bucket / "archive") == files
