"""Engines sharing one store (two Lambdas on one instance): conditional saves and retries.

A lost race re-evaluates on fresh state, and the actions of a lost attempt never run, so a
message is applied once and a due timer fires once however the two engines interleave.
"""

from __future__ import annotations

from typing import Any

import pytest
from detector_models import RecordingSink

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, default_detector_paths, load_detector_model, load_input
from cloud.detectors.engine import MAX_ATTEMPTS
from cloud.detectors.trace import TraceRecorder
from cloud.ports import StateStore
from edge.clock import ManualClock
from edge.errors import VersionConflictError

T0 = 1_767_225_600.0


class KindSink(RecordingSink):
    """The recording sink, read as action kinds."""

    def kinds(self) -> list[str]:
        return [r.kind for r in self.requests]


def engine(
    state: StateStore,
    clock: ManualClock,
    sink: Any,
    *,
    preload: bool = True,
    trace: TraceRecorder | None = None,
) -> DetectorEngine:
    model_path, input_path = default_detector_paths()
    return DetectorEngine(
        load_detector_model(model_path),
        [load_input(input_path)],
        state,
        clock,
        sink,
        preload=preload,
        observer=trace,
    )


def result(prediction: int, minute: int) -> dict[str, Any]:
    return {
        "asset": "pump-02",
        "thing": "pump-02",
        "timestamp": f"2026-01-01T00:{minute:02d}:00.000000",
        "prediction": prediction,
        "prediction_reason": "ANOMALY_DETECTED" if prediction else "NO_ANOMALY_DETECTED",
        "anomaly_score": 0.9 if prediction else 0.1,
    }


def test_a_stale_engine_re_evaluates_on_the_fresh_instance() -> None:
    # GIVEN two engines that both loaded pump-02 after one anomalous result
    state, clock = InMemoryStateStore(), ManualClock(T0)
    sink_a, sink_b = KindSink(), KindSink()
    first = engine(state, clock, sink_a)
    first.put_message("AnomalyResults", result(1, 1))
    a, b = engine(state, clock, sink_a), engine(state, clock, sink_b)
    # WHEN each applies one more anomalous result, B from its now stale copy
    a.put_message("AnomalyResults", result(1, 2))
    b.put_message("AnomalyResults", result(1, 3))
    # THEN B lost the race, re-read A's write and counted on: the third result alarms
    stored = state.get("detectors/equipment_anomaly", "pump-02")
    assert stored is not None and stored["state"] == "Alarm"
    assert stored["variables"]["last_timestamp"] == "2026-01-01T00:03:00.000000"
    assert sink_a.kinds() == []
    assert sink_b.kinds() == ["sns", "iotTopicPublish"]


def test_a_due_timer_fires_once_across_two_engines() -> None:
    state, clock = InMemoryStateStore(), ManualClock(T0)
    engine(state, clock, KindSink()).put_message("AnomalyResults", result(0, 1))
    sink_a, sink_b = KindSink(), KindSink()
    a, b = engine(state, clock, sink_a), engine(state, clock, sink_b)
    clock.advance(601)  # the heartbeat (600 s for a result without stale_after_s) is due
    fired = (a.tick(), b.tick())
    assert fired == (1, 0)
    stored = state.get("detectors/equipment_anomaly", "pump-02")
    assert stored is not None and stored["state"] == "Stale"
    assert (sink_a.kinds(), sink_b.kinds()) == (["sns"], [])  # one 'went silent' alert
    assert b.tick() == 0 and a.tick() == 0


def test_a_lost_attempt_runs_no_action() -> None:
    # GIVEN A and B both hold pump-02 two results from an alarm
    state, clock = InMemoryStateStore(), ManualClock(T0)
    seed = engine(state, clock, KindSink())
    seed.put_message("AnomalyResults", result(1, 1))
    seed.put_message("AnomalyResults", result(1, 2))
    sink_a, sink_b = KindSink(), KindSink()
    seen_a, seen_b = TraceRecorder(), TraceRecorder()
    a = engine(state, clock, sink_a, trace=seen_a)
    b = engine(state, clock, sink_b, trace=seen_b)
    # WHEN both see the alarming third result
    a.put_message("AnomalyResults", result(1, 3))
    b.put_message("AnomalyResults", result(1, 3))
    # THEN one alarm: A raised it; B re-evaluated in Alarm, where a result raises nothing
    assert sink_a.kinds() == ["sns", "iotTopicPublish"]
    assert sink_b.kinds() == []
    assert [
        (t.key, t.detail["from"], t.detail["to"], t.detail["event"])
        for t in seen_a.of_kind("transition")
    ] == [("pump-02", "Normal", "Alarm", "anomaly confirmed")]

    def service_actions(trace: TraceRecorder) -> list[str]:
        return [
            r.detail["action"]
            for r in trace.of_kind("action")
            if r.detail["action"] not in ("setVariable",)
        ]

    assert service_actions(seen_a) == ["sns", "iotTopicPublish"]
    # B evaluated twice (lost, then on the fresh Alarm state); only the second attempt's
    # records were released, and a result seen in Alarm raises nothing
    assert service_actions(seen_b) == []
    assert seen_b.of_kind("transition", "created") == []


def test_lazy_engine_reads_only_the_instance_it_needs() -> None:
    state, clock = InMemoryStateStore(), ManualClock(T0)
    seed = engine(state, clock, KindSink())
    for asset in ("pump-01", "pump-02", "pump-03"):
        seed.put_message("AnomalyResults", {**result(0, 1), "asset": asset, "thing": asset})
    lazy = engine(state, clock, KindSink(), preload=False)
    assert lazy.key_values() == []
    lazy.put_message("AnomalyResults", result(1, 2))
    assert lazy.key_values() == ["pump-02"]
    assert lazy.describe("pump-01")["detector"]["state"]["stateName"] == "Normal"


class AlwaysBehind(InMemoryStateStore):
    """Someone else always wrote first."""

    def put_if_version(self, namespace: str, key: str, value: Any, version: int | None) -> int:
        if namespace.startswith("detectors/"):
            raise VersionConflictError(namespace, key, version)
        return super().put_if_version(namespace, key, value, version)


def test_endless_conflicts_give_up_with_the_conflict_error() -> None:
    sink = KindSink()
    lost = engine(AlwaysBehind(), ManualClock(T0), sink)
    with pytest.raises(VersionConflictError):
        lost.put_message("AnomalyResults", result(1, 1))
    assert sink.requests == []
    assert MAX_ATTEMPTS > 1
