"""Rules runner on a real broker: messages land as L4E files; a killed runner loses nothing."""

from __future__ import annotations

import time
from pathlib import Path

from cloud.adapters.local import FsObjectStore
from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.runner import RulesRunner, load_rules
from cloud.runtime.broker import EmbeddedBroker
from edge import wire
from edge.clock import ManualClock

T0 = 1652443800


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def messages(first_seq: int, n_samples: int, start_s: int = 1) -> list[wire.Telemetry]:
    samples = [wire.Sample((T0 + start_s + i) * 1000, {"x": i * 0.25}) for i in range(n_samples)]
    return wire.batch_samples("s1", "pump", "dev", first_seq, samples, per_message=10)


def test_runner_lands_rows_and_quarantines(broker: EmbeddedBroker, tmp_path: Path) -> None:
    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    batcher = Batcher(store, BatcherConfig(), clock, spool_path=str(tmp_path / "spool.db"))
    runner = RulesRunner(broker.url, load_rules(), batcher, clock, client_id="rules-it-1")
    runner.start()
    pub = MqttPublisher(broker.url, "it-pub-1")
    try:
        for m in messages(0, 100):
            pub.publish(m.topic, wire.encode(m))
        pub.publish("dt/plantwatch/s1/pump/telemetry", b"\xffnot json")
        pub.publish("dt/plantwatch/s1/pump/other", b"ignored: no rule matches")
        wait_for(lambda: batcher.stats["accepted"] == 10 and batcher.stats["quarantined"] == 1)
    finally:
        pub.close()
        runner.stop()
    body = store.get("input/pump_20220513121500.csv").decode()
    assert body.splitlines()[0] == "Timestamp,x"
    assert len(body.splitlines()) == 101
    assert batcher.stats["quarantined_by_reason"] == {"bad_json": 1}


def test_killed_runner_loses_no_acknowledged_data(broker: EmbeddedBroker, tmp_path: Path) -> None:
    # GIVEN a runner that accepted half the messages and then died without flushing
    clock = ManualClock(T0)
    store = FsObjectStore(tmp_path / "bucket")
    spool = str(tmp_path / "spool.db")
    first = Batcher(store, BatcherConfig(), clock, spool_path=spool)
    runner = RulesRunner(broker.url, load_rules(), first, clock, client_id="rules-it-2")
    runner.start()
    pub = MqttPublisher(broker.url, "it-pub-2")
    batch = messages(0, 200)
    for m in batch[:10]:
        pub.publish(m.topic, wire.encode(m))
    wait_for(lambda: first.stats["accepted"] == 10)
    runner._client.loop_stop()  # the process "dies": no disconnect, no flush
    runner._client.socket().close()
    # WHEN a new runner starts on the same spool and the rest arrives, with redeliveries
    # (the embedded amqtt broker keeps no offline queue for anonymous sessions, so nothing
    # is published while no runner is connected)
    second = Batcher(store, BatcherConfig(), clock, spool_path=spool)
    restarted = RulesRunner(broker.url, load_rules(), second, clock, client_id="rules-it-2")
    restarted.start()
    try:
        for m in batch[10:]:
            pub.publish(m.topic, wire.encode(m))
        for m in batch[5:8]:
            pub.publish(m.topic, wire.encode(m))
        wait_for(lambda: second.stats["accepted"] + second.stats["duplicates"] >= 13)
    finally:
        pub.close()
        restarted.stop()
    # THEN every reading is written exactly once
    rows = [
        line for key in store.list("input/") for line in store.get(key).decode().splitlines()[1:]
    ]
    assert len(rows) == 200
    assert len(set(rows)) == 200
    assert second.stats["duplicates"] == 3
