"""`plantwatch up --auth` and `plantwatch auth`, as a user runs them, with a raw paho client
as the device and as an attacker (issue 13, items 3 and 10)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from raw_mqtt import RawClient

from cloud.adapters.local.mqtt_url import parse_broker_url
from edge import wire

pytestmark = pytest.mark.slow
PLANTWATCH = [sys.executable, "-m", "cloud.cli.main"]


def plantwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PLANTWATCH, *args], capture_output=True, text=True, timeout=60)


def test_a_public_bind_without_auth_is_refused_in_one_line(tmp_path: Path) -> None:
    result = plantwatch("up", "--data", str(tmp_path), "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("plantwatch: error: --host 0.0.0.0: ")
    assert "--auth" in result.stderr and "Traceback" not in result.stderr


def test_up_with_auth_refuses_strangers_and_serves_a_provisioned_device(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = plantwatch(
        "auth", "add-device", "pump-01", "--site", "s1", "--data", str(data), "--json"
    )
    assert made.returncode == 0, made.stderr
    device = json.loads(made.stdout)
    assert device["username"] == "pump-01" and device["assets"] == ["pump-01"]
    listing = plantwatch("auth", "list", "--data", str(data))
    assert "pump-01" in listing.stdout and device["password"] not in listing.stdout

    proc = subprocess.Popen(
        [*PLANTWATCH, "up", "--auth", "--max-message-kb", "8", "--data", str(data), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    clients: list[RawClient] = []
    try:
        url = proc.stdout.readline().strip().removeprefix("broker: ")
        address = parse_broker_url(url)
        runtime = json.loads((data / "runtime.json").read_text())
        assert runtime["auth"] is True and runtime["max_message_kb"] == 8
        assert runtime["shadow_rest"] is None, "no credential-free REST face beside the ACL"

        stranger = RawClient(address.host, address.port)
        clients.append(stranger)
        assert not stranger.accepted, "anonymous clients are refused"

        late = plantwatch(
            "auth", "add-device", "pump-02", "--site", "s1", "--data", str(data), "--json"
        )
        assert late.returncode == 0, late.stderr
        assert "re-read the credentials" in late.stderr
        second = json.loads(late.stdout)

        pump1 = RawClient(
            address.host, address.port, username="pump-01", password=device["password"]
        )
        clients.append(pump1)
        assert pump1.accepted
        for _ in range(50):  # the broker re-reads its files on SIGHUP, asynchronously
            pump2 = RawClient(
                address.host, address.port, username="pump-02", password=second["password"]
            )
            clients.append(pump2)
            if pump2.accepted:
                break
            time.sleep(0.1)
        assert pump2.accepted, "a device added while the stack runs can connect"

        now_ms = int(time.time()) * 1000
        own = wire.Telemetry("s1", "pump-01", "pump-01", 1, (wire.Sample(now_ms, {"flow": 1.5}),))
        forged = wire.Telemetry(
            "s1", "pump-02", "pump-01", 1, (wire.Sample(now_ms, {"flow": 9.0}),)
        )
        assert pump1.publish(own.topic, wire.encode(own))
        # a publish the policy refuses ends the connection (amqtt, as IoT Core), no PUBACK
        pump1.client.reconnect_delay_set(30, 30)
        refused = pump1.client.publish(forged.topic, wire.encode(forged), qos=1)
        pump1.wait(lambda: pump1.disconnects >= 1, "the broker refusing the forged publish")
        assert not refused.is_published()
        pump1.close()
        pump1 = RawClient(
            address.host, address.port, username="pump-01", password=device["password"]
        )
        clients.append(pump1)
        assert pump1.subscribe(["$aws/things/pump-01/shadow/update/delta"]) == [True]
        shadow = plantwatch("shadow", "set", "pump-01", "mode=safe", "--data", str(data), "--json")
        assert shadow.returncode == 0, shadow.stderr
        delta = json.loads(pump1.wait_for_message("$aws/things/pump-01/shadow/update/delta"))
        assert delta["state"] == {"mode": "safe"}

        pump2.publish("dt/plantwatch/s1/pump-02/telemetry", b"x" * 10_000, timeout=2)
        pump2.wait(lambda: pump2.disconnects >= 1, "the broker dropping the oversized sender")
        time.sleep(0.5)
    finally:
        for client in clients:
            client.close()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    inputs = data / "buckets" / "plantwatch" / "input"
    assert [p.name.split("_")[0] for p in inputs.glob("*.csv")] == ["pump-01"], err[-2000:]
    assert not (data / "buckets" / "plantwatch" / "quarantine").exists()
    assert device["password"] not in err and second["password"] not in err
