"""A stack started on a bucket that already holds results (L4E's, carried over) takes them
as history: no detector hears of them; results written after the start are fed."""

from __future__ import annotations

import json
from pathlib import Path

from waiting import wait_for

from cloud.feeder import default_detector_paths
from cloud.runtime.layout import DataLayout
from cloud.runtime.stack import LocalStack, StackConfig
from edge.clock import ManualClock


def _results(stack: LocalStack, folder: str, prediction: int) -> None:
    line = {"timestamp": f"{folder[:19]}.000000", "prediction": prediction}
    line["anomaly_score"] = 0.9 if prediction else 0.1
    body = "".join(json.dumps(line) + "\n" for _ in range(3)).encode()
    stack.bucket.put(f"output/pump-07/{folder}/results.jsonl", body)


def test_results_already_in_the_bucket_do_not_reach_the_detectors(tmp_path: Path) -> None:
    # GIVEN a bucket holding a past anomalous results object
    layout = DataLayout.at(tmp_path / "data")
    model_path, input_path = default_detector_paths()
    config = StackConfig(
        data=layout,
        detector_models=(model_path,),
        detector_inputs=(input_path,),
        poll_interval_s=0.05,
        archive=False,
    )
    clock = ManualClock(1_767_225_600.0)  # 2026-01-01
    stack = LocalStack(config, clock)
    _results(stack, "2025-06-01T00:00:00Z", 1)
    stack.start()
    try:
        # WHEN the stack runs and a results object is written after its start
        _results(stack, "2026-01-01T00:00:00Z", 0)
        progress = stack.feeder.namespace
        key = "output/pump-07/2026-01-01T00:00:00Z/results.jsonl"
        # the detector appears with the first row fed; the progress record counts all three
        # a moment later (on a loaded machine, after a first look)
        wait_for(lambda: (stack.state.get(progress, key) or {}).get("rows") == 3)
        # THEN the new rows were fed, and none of the old object's
        assert stack.engine.key_values() == ["pump-07"]
        old = stack.state.get(progress, "output/pump-07/2025-06-01T00:00:00Z/results.jsonl")
        assert old == {"rows": 0, "settled": True, "baseline": True}
    finally:
        stack.stop()
