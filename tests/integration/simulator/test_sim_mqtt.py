"""The fleet and replay publish real QoS 1 wire messages to a real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud.runtime.broker import EmbeddedBroker
from edge.clock import ManualClock, SystemClock
from edge.wire import TELEMETRY_FILTER, Sample, decode, shadow_topic
from simulator.fleet import AssetSpec, FleetSimulator
from simulator.runner import DirectPublisher, FleetSource, agent_sinks, run

ROOT = Path(__file__).resolve().parents[3]
MONDAY_8 = datetime(2026, 1, 12, 8, tzinfo=UTC).timestamp()


class Collector:
    def __init__(self, url: str, topics: list[str]) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"c-{time.time_ns()}")

        def on_connect(client: mqtt.Client, *_: object) -> None:
            for topic in topics:
                client.subscribe(topic, 1)
            if not topics:
                ready.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert ready.wait(10)
        time.sleep(0.2)

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload))

    def wait(self, predicate, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(list(self.messages)):
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def collector(broker: EmbeddedBroker) -> Iterator[Collector]:
    c = Collector(broker.url, [TELEMETRY_FILTER, "$aws/things/+/shadow/update"])
    yield c
    c.close()


def _telemetry(messages: list[tuple[str, bytes]]) -> list:
    return [decode(p) for t, p in messages if t.startswith("dt/")]


def test_fleet_publishes_every_sample_once_as_wire_messages(
    broker: EmbeddedBroker, collector: Collector
) -> None:
    assets = [AssetSpec(f"pump-0{i}", "pump", i) for i in (1, 2, 3)]
    fleet = FleetSimulator(assets, None, start=MONDAY_8, rate_s=10.0)
    source = FleetSource(fleet)
    pub = DirectPublisher(broker.url, site="s1", sender="sim-s1", samples_per_message=7)
    sent = run(source, pub, ManualClock(MONDAY_8), until=MONDAY_8 + 600, tick_s=60)
    pub.flush()
    pub.close()
    assert sent == 180
    assert collector.wait(lambda m: sum(len(x.samples) for x in _telemetry(m)) >= 180)
    got = _telemetry(collector.messages)
    assert {(m.site, m.asset) for m in got} == {("s1", a.name) for a in assets}
    assert len({m.msg_id for m in got}) == len(got)
    for asset in assets:
        ts = sorted(s.ts_ms for m in got if m.asset == asset.name for s in m.samples)
        assert ts == [round((MONDAY_8 + 10 * k) * 1000) for k in range(1, 61)]


def test_a_shadow_delta_sets_the_mode_and_is_reported() -> None:
    # mosquitto when installed: amqtt needs the runtime's $aws/ topic patch (shadow service)
    with EmbeddedBroker("auto") as broker:
        _shadow_round_trip(broker)


def _shadow_round_trip(broker: EmbeddedBroker) -> None:
    collector = Collector(broker.url, ["$aws/things/+/shadow/update"])
    fleet = FleetSimulator([AssetSpec("pump-02", "pump", 2)], None, start=MONDAY_8, rate_s=10.0)
    source = FleetSource(fleet)
    pub = DirectPublisher(
        broker.url, site="s1", sender="sim-s1b", on_command=source.apply, assets=["pump-02"]
    )
    time.sleep(0.3)
    commander = Collector(broker.url, [])
    commander.client.publish(
        shadow_topic("pump-02", "update/delta"), json.dumps({"state": {"mode": "safe"}}), qos=1
    )
    reported = shadow_topic("pump-02", "update")
    assert collector.wait(lambda m: any(t == reported for t, _ in m))
    assert fleet.mode("pump-02") == "safe"
    body = next(json.loads(p) for t, p in collector.messages if t == reported)
    assert body == {"state": {"reported": {"mode": "safe"}}}
    commander.close()
    collector.close()
    pub.close()


def test_a_delta_delivered_twice_or_after_a_newer_one_is_not_applied_again() -> None:
    """Shadow deltas may arrive more than once and out of order (iot-core-rules-and-limits
    §2); AWS's shadow guide has a device tell them apart by ``version``: one not newer than
    the last applied is old news, and applying it would undo a newer command."""
    with EmbeddedBroker("auto") as broker:
        calls: list[tuple[str, str, object]] = []
        applied = threading.Event()

        def on_command(thing: str, key: str, value: object) -> None:
            calls.append((thing, key, value))
            if value == "normal":
                applied.set()

        pub = DirectPublisher(
            broker.url, site="s1", sender="sim-dup", on_command=on_command, assets=["pump-02"]
        )
        time.sleep(0.3)
        commander = Collector(broker.url, [])
        topic = shadow_topic("pump-02", "update/delta")
        for version, mode in ((5, "safe"), (5, "safe"), (4, "stop"), (6, "normal")):
            body = {"state": {"mode": mode}, "version": version}
            commander.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)
        assert applied.wait(10), calls
        assert calls == [("pump-02", "mode", "safe"), ("pump-02", "mode", "normal")]
        commander.close()
        pub.close()


def test_a_fleet_on_gateway_agents_reaches_every_asset_within_the_subscription_quota(
    broker: EmbeddedBroker, collector: Collector, tmp_path: Path
) -> None:
    """A gateway agent subscribes to 4 shadow topics per asset on its one connection, and
    amqtt, as IoT Core, takes 50 a connection: a fleet of more than 12 assets is split
    across gateways, or the one gateway's SUBACKs fail and it never gets connected."""
    names = [f"pump-{n:02d}" for n in range(25)]
    made = agent_sinks(
        names,
        site="s1",
        broker_url=broker.url,
        data_dir=tmp_path,
        clock=SystemClock(),
        gateway=True,
    )
    assert made is not None
    sink, stop = made
    try:
        for name in names:
            sink(name, [Sample(int(MONDAY_8 * 1000), {"flow": 1.0})])
        assert collector.wait(lambda m: {t.asset for t in _telemetry(m)} == set(names), 30)
    finally:
        stop()
    senders = {t.sender for t in _telemetry(collector.messages)}
    assert len(senders) == 3 and all(s.startswith("gw-s1") for s in senders)


def test_a_direct_publisher_of_more_assets_than_the_subscription_quota_gets_every_command(
    broker: EmbeddedBroker,
) -> None:
    """The direct route follows every asset's deltas on one connection, and amqtt, as IoT
    Core, takes 50 subscriptions a connection: past that it follows them all with one
    wildcard filter, and a delta for a thing not in the fleet is none of its business."""
    names = [f"pump-{n:02d}" for n in range(60)]
    calls: list[tuple[str, str, object]] = []
    applied = threading.Event()

    def on_command(thing: str, key: str, value: object) -> None:
        calls.append((thing, key, value))
        applied.set()

    pub = DirectPublisher(
        broker.url, site="s1", sender="sim-many", on_command=on_command, assets=names
    )
    commander = Collector(broker.url, [])
    try:
        time.sleep(1.0)
        for thing in ("not-in-the-fleet", names[-1]):
            body = json.dumps({"state": {"mode": "safe"}, "version": 2})
            commander.client.publish(shadow_topic(thing, "update/delta"), body, qos=1)
        assert applied.wait(10)
        time.sleep(0.3)
        assert calls == [(names[-1], "mode", "safe")]
    finally:
        commander.close()
        pub.close()


def _cli(*args: str, tmpdir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run(
        [sys.executable, "-m", "cloud.cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli_fleet_runs_the_demo_scenario_accelerated(
    broker: EmbeddedBroker, collector: Collector, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    done = _cli(
        "sim", "fleet", "--demo", "--direct", "--speed", "3000", "--duration", "70m",
        "--start", "2026-01-12T08:00:00Z", "--broker", broker.url, "--json",
        "--labels-out", str(labels),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["readings"] == 3 * 420 and summary["via"] == "direct paho QoS 1"
    assert collector.wait(lambda m: sum(len(x.samples) for x in _telemetry(m)) >= 3 * 420)
    assert labels.read_text() == (
        "2026-01-12T09:00:00.000000,2026-01-12T09:10:00.000000,OVERHEAT,pump-02,"
        "motor cooling fan failed\n"
    )


def test_cli_fleet_through_edge_agents_removes_its_temporary_queues(
    broker: EmbeddedBroker, collector: Collector, tmp_path: Path
) -> None:
    done = _cli(
        "sim", "fleet", "--assets", "2", "--speed", "600", "--duration", "2m", "--rate", "10s",
        "--broker", broker.url, "--json", tmpdir=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["via"] == "edge agent" and summary["readings"] == 2 * 12
    assert list(tmp_path.iterdir()) == []


def test_cli_replay_plays_a_skab_file(
    broker: EmbeddedBroker, collector: Collector, tmp_path: Path
) -> None:
    path = tmp_path / "valve.csv"
    rows = "\n".join(f"2020-03-09 10:14:{s:02d};0.02{s % 10};1.{s}" for s in range(30))
    path.write_text(f"datetime;Accelerometer1RMS;Current\n{rows}\n")
    done = _cli(
        "sim", "replay", "--dataset", str(path), "--speed", "100", "--broker", broker.url, "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["readings"] == 30
    assert collector.wait(lambda m: sum(len(x.samples) for x in _telemetry(m)) >= 30)
    got = _telemetry(collector.messages)
    assert {m.asset for m in got} == {"valve"}
