"""A stack started on a bucket that already holds results (L4E's, carried over) takes them
as history: no detector hears of them; results written after the start are fed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from cloud.feeder import default_detector_paths
from cloud.runtime.layout import DataLayout
from cloud.runtime.stack import LocalStack, StackConfig
from edge.clock import ManualClock


def _wait(condition: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


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
        detector_model=model_path,
        detector_inputs=(input_path,),
        poll_interval_s=0.05,
        archive=False,
    )
    clock = ManualClock(1_767_225_600.0)  # 2026-01-01
    stack = LocalStack(config, clock)
    _results(stack, "2025-06-01T00:00:00Z", 1)
    stack.start()
    try:
        # WHEN the stack runs, THEN no detector instance hears of it
        time.sleep(0.5)
        assert stack.engine.key_values() == []
        # AND a results object written now is fed
        _results(stack, "2026-01-01T00:00:00Z", 0)
        assert _wait(lambda: stack.engine.key_values() == ["pump-07"])
    finally:
        stack.stop()
