"""`plantwatch up`: first stdout line names the broker, the second the dashboard,
runtime.json is written, SIGTERM stops it cleanly, flushes what it had received and leaves
no runtime.json or broker folder."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.adapters.local.mqtt_publisher import MqttPublisher
from edge import wire

pytestmark = pytest.mark.slow


def test_up_runs_until_sigterm_and_flushes(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud.cli.main",
            "up",
            "--data",
            str(data),
            "--port",
            "0",
            "--dashboard-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        umask=0o022,  # world-readable by default: the data must stay private anyway
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    now_ms = int(time.time()) * 1000
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("broker: mqtt://127.0.0.1:"), first
        url = first.removeprefix("broker: ")
        second = proc.stdout.readline().strip()
        assert second.startswith("dashboard: http://127.0.0.1:"), second
        dashboard = second.removeprefix("dashboard: ")
        runtime = json.loads((data / "runtime.json").read_text())
        assert runtime["broker"] == url and runtime["dashboard"] == dashboard
        shadow_rest = runtime["shadow_rest"]
        assert shadow_rest.startswith("http://127.0.0.1:"), runtime
        with pytest.raises(urllib.error.HTTPError) as missing:  # boto3 iot-data's GET
            urllib.request.urlopen(f"{shadow_rest}/things/pump-09/shadow", timeout=10)
        assert missing.value.code == 404
        assert missing.value.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
        with urllib.request.urlopen(f"{dashboard}/api/v1/version", timeout=10) as response:
            assert json.load(response)["api"] == "v1"
        assert [p.name[:18] for p in scratch.iterdir()] == ["plantwatch-broker-"]

        sample = wire.Sample(now_ms, {"flow": 1.5, "speed": 1450.0})
        message = wire.Telemetry("s1", "pump-09", "t", 1, (sample,))
        publisher = MqttPublisher(url, "test-up")
        publisher.publish(message.topic, wire.encode(message))
        publisher.publish("dt/plantwatch/s1/pump-09/telemetry", b"{not json")
        publisher.close()
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert not (data / "runtime.json").exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{dashboard}/api/v1/version", timeout=2)
    assert list(scratch.iterdir()) == []
    bucket = data / "buckets" / "plantwatch"
    inputs = sorted((bucket / "input").glob("pump-09_*.csv"))
    assert len(inputs) == 1, err[-2000:]
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000")
    assert inputs[0].read_text().splitlines()[1:] == [f"{stamp},1.5,1450"]
    assert any(p.is_file() for p in (bucket / "quarantine").rglob("*"))
    loose = {
        str(p.relative_to(data)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in [data, *data.rglob("*")]
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    }
    assert loose == {}  # directories 0700, SQLite and bucket files 0600
