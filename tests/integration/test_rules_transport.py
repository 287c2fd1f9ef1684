"""The rules runner's two MQTT clients on real brokers: ``auto`` picks awscrt's MQTT 5
client on mosquitto and paho on amqtt; with awscrt a message is acknowledged only after
its spool commit, so what a runner received but never committed comes back to the next
runner of the same session, and nothing committed comes back twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

from cloud.adapters.local import FsObjectStore
from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.runner import RulesRunner, load_rules
from cloud.runtime.broker import EmbeddedBroker
from edge import wire
from edge.clock import ManualClock
from edge.errors import PlantwatchError

T0 = 1652443800


def messages(n_samples: int) -> list[wire.Telemetry]:
    samples = [wire.Sample((T0 + 1 + i) * 1000, {"x": i * 0.5}) for i in range(n_samples)]
    return wire.batch_samples("s1", "pump", "dev", 0, samples, per_message=10)


def runner_on(url: str, batcher: Batcher, client_id: str, **kwargs: Any) -> RulesRunner:
    return RulesRunner(url, load_rules(), batcher, ManualClock(T0), client_id=client_id, **kwargs)


def batcher_on(tmp_path: Path) -> Batcher:
    store = FsObjectStore(tmp_path / "bucket")
    return Batcher(store, BatcherConfig(), ManualClock(T0), spool_path=str(tmp_path / "s.db"))


@pytest.mark.mosquitto
@pytest.mark.parametrize("kind", ["amqtt", "mosquitto"])
def test_auto_uses_awscrt_where_the_broker_speaks_mqtt5_and_paho_elsewhere(
    kind: str, tmp_path: Path
) -> None:
    with EmbeddedBroker(kind) as broker:
        runner = runner_on(broker.url, batcher_on(tmp_path), f"rules-auto-{kind}")
        began = time.monotonic()
        runner.start()
        started_s = time.monotonic() - began
        try:
            pub = MqttPublisher(broker.url, "it-pub-auto")
            for m in messages(100):
                pub.publish(m.topic, wire.encode(m))
            pub.close()
            wait_for(lambda: runner.batcher.stats["accepted"] == 10)
        finally:
            runner.stop()
    assert runner.client_kind == ("crt" if kind == "mosquitto" else "paho")
    assert started_s < 5, "amqtt refuses MQTT 5 at once; the fallback costs no timeout"
    assert runner.batcher.stats["readings"] == 100


@pytest.mark.mosquitto
def test_awscrt_redelivers_what_was_received_but_not_committed_and_nothing_else(
    tmp_path: Path,
) -> None:
    batch = messages(200)
    with EmbeddedBroker("mosquitto") as broker:
        # GIVEN an awscrt runner that commits the first 10 messages, then its spool fails
        first = runner_on(broker.url, batcher_on(tmp_path), "rules-crt-redeliver", client="crt")
        run = first.actions.forward  # what the worker calls for the project rule
        failing = {"on": False}

        def maybe_fail(*args: Any, **kwargs: Any) -> None:
            if failing["on"]:
                raise PlantwatchError("the spool fails: nothing is committed")
            run(*args, **kwargs)

        first.actions.forward = maybe_fail  # type: ignore[method-assign]
        first.start()
        assert first.client_kind == "crt"
        pub = MqttPublisher(broker.url, "it-pub-crt")
        try:
            for m in batch[:10]:
                pub.publish(m.topic, wire.encode(m))
            wait_for(lambda: first.batcher.stats["accepted"] == 10)
            failing["on"] = True
            for m in batch[10:]:
                pub.publish(m.topic, wire.encode(m))
            wait_for(lambda: first.failures == 10)
            # WHEN it goes away without acknowledging those or flushing, and another runner
            # takes its session (same client id) on the same spool
            first.transport.close()
            first.inbox.close()
            second = runner_on(
                broker.url, batcher_on(tmp_path), "rules-crt-redeliver", client="crt"
            )
            second.start()
            try:
                wait_for(lambda: second.batcher.stats["accepted"] == 10)
                time.sleep(0.5)  # room for any wrong redelivery of a committed message
            finally:
                second.stop()
        finally:
            pub.close()
    # THEN the broker redelivered exactly the 10 uncommitted messages
    assert second.messages == 10
    assert second.batcher.stats["duplicates"] == 0
    rows = [
        line
        for key in second.batcher.store.list("input/")
        for line in second.batcher.store.get(key).decode().splitlines()[1:]
    ]
    assert len(rows) == len(set(rows)) == 200


def test_awscrt_named_explicitly_does_not_fall_back(broker: EmbeddedBroker, tmp_path: Path):
    runner = runner_on(
        broker.url, batcher_on(tmp_path), "rules-crt-only", client="crt", connect_timeout_s=1
    )
    with pytest.raises(PlantwatchError, match="MQTT 5 connect failed"):
        runner.start()
