"""The rules runner under load and abuse, on a real broker: a bounded inbox that pushes
back instead of growing, oversized payloads quarantined unread, and paho callbacks that
cannot be killed by an exception (issue 13, items 1 and 3)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from raw_mqtt import RawClient
from waiting import wait_for

from cloud.adapters.local import FsObjectStore
from cloud.adapters.local.mqtt_url import guard_callbacks
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.runner import RulesRunner, load_rules
from cloud.runtime.broker import EmbeddedBroker
from edge import wire
from edge.clock import ManualClock

T0 = 1652443800


@pytest.fixture(scope="module")
def roomy_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("amqtt", max_message_kb=512) as running:
        yield running


def make_runner(url: str, tmp_path: Path, client_id: str, **kwargs: Any) -> RulesRunner:
    store = FsObjectStore(tmp_path / "bucket")
    batcher = Batcher(store, BatcherConfig(), ManualClock(T0), spool_path=str(tmp_path / "s.db"))
    return RulesRunner(url, load_rules(), batcher, ManualClock(T0), client_id=client_id, **kwargs)


def readings(n: int) -> list[wire.Telemetry]:
    samples = [wire.Sample((T0 + 1 + i) * 1000, {"x": float(i)}) for i in range(n)]
    return wire.batch_samples("s1", "pump", "dev", 0, samples, per_message=1)


@pytest.fixture(params=["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def either_broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    """amqtt (the runner uses paho) or mosquitto (awscrt, whose callback then blocks)."""
    with EmbeddedBroker(request.param) as running:
        yield running


def test_a_full_inbox_pushes_back_and_nothing_is_lost(
    either_broker: EmbeddedBroker, tmp_path: Path
):
    broker = either_broker
    runner = make_runner(broker.url, tmp_path, "rules-bp", inbox_messages=5, max_batch=2)
    gate = threading.Event()
    run = runner.actions.forward  # what the worker calls for the project rule

    def slow(*args: Any, **kwargs: Any) -> None:
        gate.wait(20)
        run(*args, **kwargs)

    runner.actions.forward = slow  # type: ignore[method-assign]
    runner.start()
    publisher = RawClient(broker.host, broker.port)
    try:
        for message in readings(200):
            assert publisher.publish(message.topic, wire.encode(message))
        wait_for(lambda: runner.inbox.waits >= 1)
        deepest = 0
        for _ in range(20):
            deepest = max(deepest, len(runner.inbox))
            time.sleep(0.02)
        assert deepest <= 5, "the inbox never holds more than its bound"
        assert runner.batcher.stats["accepted"] == 0, "nothing committed, so nothing acked"
        gate.set()
        wait_for(lambda: runner.batcher.stats["accepted"] == 200)
    finally:
        gate.set()
        publisher.close()
        runner.stop()
    assert runner.batcher.stats["readings"] == 200
    assert runner.batcher.stats["duplicates"] == 0


def test_an_oversized_payload_is_quarantined_as_a_prefix_without_running_the_rules(
    roomy_broker: EmbeddedBroker, tmp_path: Path
):
    runner = make_runner(roomy_broker.url, tmp_path, "rules-big")
    runner.start()
    publisher = RawClient(roomy_broker.host, roomy_broker.port)
    big = b'{"v":1,"pad":"' + b"x" * 300_000 + b'"}'
    try:
        assert publisher.publish("dt/plantwatch/s1/pump/telemetry", big)
        wait_for(lambda: runner.counts["oversize"] == 1)
        publisher.quiet(0.5)
    finally:
        publisher.close()
        runner.stop()
    store = runner.batcher.store
    (key,) = store.list("quarantine/oversize/")
    record = json.loads(store.get(key))
    assert record["payload_bytes"] == len(big) and record["payload_truncated"] is True
    assert len(record["payload"]) == 4096
    assert runner.counts["oversize"] == 1, "acknowledged once, not redelivered"


def test_an_exception_in_a_paho_callback_is_counted_and_the_client_keeps_receiving(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
):
    counts: Counter[str] = Counter()
    got: list[bytes] = []
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="guarded")

    def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.payload == b"boom":
            raise RecursionError("a callback bug")
        got.append(message.payload)

    client.on_connect = lambda c, *_a: c.subscribe("guard/test", 1)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = on_message
    guard_callbacks(client, counts, logging.getLogger("test.guard"), "test client")
    client.connect(broker.host, broker.port)
    client.loop_start()
    publisher = RawClient(broker.host, broker.port)
    try:
        assert subscribed.wait(10)
        for payload in (b"boom", b"after-1", b"boom", b"after-2"):
            publisher.publish("guard/test", payload)
        wait_for(lambda: got == [b"after-1", b"after-2"])
    finally:
        publisher.close()
        client.disconnect()
        client.loop_stop()
    assert counts["callback_errors"] == 2
    assert "test client: on_message raised" in caplog.text
