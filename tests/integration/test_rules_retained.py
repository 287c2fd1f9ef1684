"""The rules engine acts on a message when it is published; a retained message that the
broker replays because the runner subscribed is not taken in again (IoT Core replays
retained messages only to a subscription whose filter is the topic itself). mosquitto
replays every matching one to the runner's wildcard filter, at every start, unless an MQTT 5
subscription asks it not to."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from waiting import wait_for

from cloud.adapters.local import FsObjectStore
from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.runner import RulesRunner, load_rules
from cloud.runtime.broker import EmbeddedBroker
from edge import wire
from edge.clock import ManualClock

T0 = 1652443800


@pytest.mark.mosquitto
@pytest.mark.parametrize(("client", "protocol"), [("crt", "5"), ("paho", "5")])
def test_a_retained_message_is_not_taken_in_again_when_the_runner_subscribes(
    client: str, protocol: str, tmp_path: Path
) -> None:
    samples = [wire.Sample((T0 + 1 + i) * 1000, {"x": i * 0.5}) for i in range(20)]
    old, live = wire.batch_samples("s1", "pump", "dev", 0, samples, per_message=10)
    with EmbeddedBroker("mosquitto") as broker:
        pub = MqttPublisher(broker.url, f"it-pub-retained-{client}")
        pub._client.publish(old.topic, wire.encode(old), qos=1, retain=True).wait_for_publish(5)
        store = FsObjectStore(tmp_path / "bucket")
        batcher = Batcher(
            store, BatcherConfig(), ManualClock(T0), spool_path=str(tmp_path / "s.db")
        )
        runner = RulesRunner(
            broker.url,
            load_rules(),
            batcher,
            ManualClock(T0),
            client_id=f"rules-retained-{client}",
            client=client,
            protocol=protocol,
        )
        runner.start()
        try:
            # Retained as well: a subscriber that was there when it was published gets it.
            pub._client.publish(live.topic, wire.encode(live), qos=1, retain=True).wait_for_publish(
                5
            )
            wait_for(lambda: batcher.stats["accepted"] >= 1)
            time.sleep(0.3)  # room for a replay that should not come
        finally:
            runner.stop()
            pub.close()
    assert batcher.stats["accepted"] == 1
    assert batcher.stats["readings"] == 10
    assert batcher.stats["duplicates"] == 0
    body = b"".join(store.get(key) for key in store.list("") if key.endswith(".csv"))
    assert body.count(b"\n") == 11  # the live message's 10 rows under one header
