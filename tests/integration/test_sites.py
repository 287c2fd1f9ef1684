"""Sites are tenants through the whole local stack: the same asset name at two sites gets
two input files, two results objects and two detector instances; the default site keeps the
single-site names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from polling import until

from cloud.adapters.local.mqtt_publisher import MqttPublisher
from cloud.feeder import default_detector_paths
from cloud.inference.model import train
from cloud.runtime.layout import DataLayout
from cloud.runtime.stack import LocalStack, StackConfig
from edge.clock import ManualClock
from edge.wire import Sample, Telemetry, encode

SENSORS = ("current", "flow", "pressure")
T0 = pd.Timestamp("2026-03-01T00:00:00Z").timestamp()


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    load = 50 + rng.normal(0, 2, n)
    return np.column_stack(
        [0.2 * load + rng.normal(0, 0.3, n), 3 * load + rng.normal(0, 2, n), 0.05 * load + 1]
    )


def test_two_sites_with_the_same_asset_stay_apart_end_to_end(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    history = pd.DataFrame(
        _rows(rng, 1500),
        index=pd.date_range("2026-02-01", periods=1500, freq="10s", tz="UTC"),
        columns=list(SENSORS),
    )
    layout = DataLayout.at(tmp_path / "data")
    layout.registry().save("fleet", train(history))
    model_path, input_path = default_detector_paths()
    clock = ManualClock(T0 + 1)
    stack = LocalStack(
        StackConfig(
            data=layout,
            model_name="fleet",
            detector_models=(model_path,),
            detector_inputs=(input_path,),
            delay_offset_min=0,
            grace_s=0,
            poll_interval_s=0.05,
            sites=("s1", "s2"),
        ),
        clock,
    ).start()
    publisher = MqttPublisher(stack.broker_url, "sites-pub")
    try:
        # WHEN pump-01 at s1 and pump-01 at s2 report the same minutes of one window
        for site, seed in (("s1", 0), ("s2", 1)):
            values = _rows(np.random.default_rng(seed), 4)
            samples = tuple(
                Sample(
                    int((T0 + 60 * (i + 1)) * 1000),
                    dict(zip(SENSORS, map(float, row), strict=True)),
                )
                for i, row in enumerate(values)
            )
            message = Telemetry(site, "pump-01", f"gw-{site}", 0, samples)
            publisher.publish(message.topic, encode(message))
        assert until(lambda: stack.batcher.stats["accepted"] == 2, 20)
        clock.advance(300)

        # THEN each site has its own input file and its own results, read by its scheduler
        bucket = stack.bucket
        results = [
            "output/pump-01/2026-03-01T00:00:00Z/results.jsonl",
            "output/s2/pump-01/2026-03-01T00:00:00Z/results.jsonl",
        ]
        assert until(lambda: sorted(bucket.list("output/")) == results, 20)
        assert sorted(bucket.list("input/")) == [
            "input/pump-01_20260301000500.csv",
            "input/s2/pump-01_20260301000500.csv",
        ]
        for key in results:
            assert len(bucket.get(key).decode().splitlines()) == 4
        # AND two detector instances, keyed by the asset and by site:asset
        assert until(lambda: stack.engine.key_values() == ["pump-01", "s2:pump-01"], 20)
        assert [s.config.name for s in stack.schedulers] == [
            "fleet-scheduler",
            "fleet-s2-scheduler",
        ]
    finally:
        publisher.close()
        stack.stop()
