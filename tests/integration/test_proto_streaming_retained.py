"""The streaming scorer stands where IoT Core's rules stand: it acts on a reading when the
reading is published. IoT Core sends a retained message on SUBSCRIBE only to a filter equal
to its topic (iot-core-rules-and-limits §2), so a rule never sees a retained reading again;
mosquitto re-sends it to every matching wildcard subscription each time one is made, so a
restarted scorer used to score an old retained reading a second time."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from polling import until
from raw_mqtt import RawClient

from cloud.adapters.local import InMemoryObjectStore
from cloud.inference.model import train
from cloud.inference.results import decode_results
from cloud.runtime.broker import EmbeddedBroker
from cloud.runtime.streaming import StreamingRunner
from edge.clock import ManualClock
from edge.wire import Sample, Telemetry, encode

SENSORS = ("current", "flow", "pressure")


@pytest.mark.mosquitto
def test_a_restarted_scorer_does_not_score_a_retained_reading_again() -> None:
    rng = np.random.default_rng(7)
    load = 50 + rng.normal(0, 2, 1500)
    history = pd.DataFrame(
        np.column_stack([0.2 * load, 3 * load, 0.05 * load + 1]),
        index=pd.date_range("2026-01-01", periods=1500, freq="1s", tz="UTC"),
        columns=list(SENSORS),
    )
    model = train(history)
    store = InMemoryObjectStore()
    t0_ms = int(pd.Timestamp("2026-03-01T00:00:01Z").value // 1_000_000)
    clock = ManualClock(t0_ms / 1000)
    reading = Telemetry("s1", "pump-07", "gw", 0, (Sample(t0_ms, {"current": 10.0}),))
    with EmbeddedBroker("mosquitto") as broker:
        device = RawClient(broker.host, broker.port, client_id="retaining-device")
        runner = StreamingRunner(
            broker.url, model, store, clock, client_id="stream", ignore_retained=True
        )
        runner.start()
        try:
            device.client.publish(reading.topic, encode(reading), 1, retain=True).wait_for_publish(
                5
            )
            assert until(lambda: runner.stats["readings"] == 1)
            runner.stop()
            runner = StreamingRunner(
                broker.url, model, store, clock, client_id="stream", ignore_retained=True
            )
            runner.start()
            fresh = Telemetry("s1", "pump-07", "gw", 1, (Sample(t0_ms + 1000, {"current": 11.0}),))
            assert device.publish(fresh.topic, encode(fresh))
            assert until(lambda: runner.stats["messages"] >= 1)
            time.sleep(0.3)
            assert runner.stats["messages"] == 1, "only the live reading reached the scorer"
            assert runner.counts["ignored_retained"] == 1
        finally:
            runner.stop()
            device.close()
    lines = [line for key in store.list("stream/") for line in decode_results(store.get(key))]
    assert [line["timestamp"] for line in lines] == [
        "2026-03-01T00:00:01.000000",
        "2026-03-01T00:00:02.000000",
    ]
