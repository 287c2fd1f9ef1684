"""The message router: every engine that reads the input gets the message, and the writes
one message causes in several engines share one batch (one SQLite commit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cloud.adapters.local import InMemoryNotifier, InMemoryPublisher, SqliteStateStore
from cloud.detectors import DetectorEngine, default_detector_paths, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from cloud.detectors.alarms.model import default_alarm_path
from cloud.detectors.router import MessageRouter
from edge.clock import ManualClock


class CountingStore(SqliteStateStore):
    """SQLite that counts its batches and the writes made outside any batch."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches = 0
        self.depth = 0
        self.unbatched_writes = 0

    def batch(self) -> Any:
        store = self
        inner = super().batch()

        class Counted:
            def __enter__(self) -> None:
                store.depth += 1
                if store.depth == 1:
                    store.batches += 1
                inner.__enter__()

            def __exit__(self, *exc: object) -> None:
                inner.__exit__(*exc)
                store.depth -= 1

        return Counted()

    def put_if_version(self, *args: Any) -> int:
        self.unbatched_writes += self.depth == 0
        return super().put_if_version(*args)

    def put(self, *args: Any) -> None:
        self.unbatched_writes += self.depth == 0
        super().put(*args)


def row(score: float, minute: int) -> dict[str, Any]:
    return {
        "asset": "pump-02",
        "timestamp": f"2026-01-01T00:{minute:02d}:00.000000",
        "prediction": int(score > 0.5),
        "anomaly_score": score,
    }


def test_one_message_to_a_detector_and_an_alarm_is_one_batch(tmp_path: Path) -> None:
    store, clock = CountingStore(tmp_path / "state.db"), ManualClock()
    model_path, input_path = default_detector_paths()
    results = load_input(input_path)
    notifier = InMemoryNotifier()
    sink = LocalActionSink(notifier, InMemoryPublisher(), state=store)
    detector = DetectorEngine(load_detector_model(model_path), [results], store, clock, sink)
    alarm = AlarmEngine(load_alarm_model(default_alarm_path()), [results], store, clock, sink)
    router = MessageRouter([detector, alarm], store)
    assert router.inputs.keys() == {"AnomalyResults"}
    store.unbatched_writes = 0  # the engines registered their models
    for minute, score in enumerate((0.2, 0.9, 0.95, 0.97)):
        router.put_message("AnomalyResults", row(score, minute))
    # four messages, four batches; the alarm's state change (ACTIVE, its history, its
    # notification's dedup records) and the detector's alarm all went into them
    assert store.batches == 4 and store.unbatched_writes == 0
    assert detector.describe("pump-02")["detector"]["state"]["stateName"] == "Alarm"
    assert alarm.state_of("pump-02") == "ACTIVE"
    kinds = sorted({n.attributes["kind"] for n in notifier.sent})
    assert kinds == ["ALARM", "ALARM_ACTIVE"]


def test_a_single_engine_keeps_its_own_commits(tmp_path: Path) -> None:
    store, clock = CountingStore(tmp_path / "state.db"), ManualClock()
    model_path, input_path = default_detector_paths()
    detector = DetectorEngine(
        load_detector_model(model_path),
        [load_input(input_path)],
        store,
        clock,
        LocalActionSink(InMemoryNotifier(), InMemoryPublisher()),
    )
    router = MessageRouter([detector], store)
    store.unbatched_writes = 0
    router.put_message("AnomalyResults", row(0.1, 0))
    assert store.batches == 0 and store.unbatched_writes == 1  # nothing to group
