"""The shipped model against a reference of its rule, and restarts that change nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cloud.adapters.local import (
    InMemoryNotifier,
    InMemoryPublisher,
    InMemoryStateStore,
    SqliteStateStore,
)
from cloud.detectors import DetectorEngine, default_detector_paths, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from edge.clock import ManualClock

MODEL_PATH, INPUT_PATH = default_detector_paths()
MODEL = load_detector_model(MODEL_PATH)
INPUT = load_input(INPUT_PATH)

steps = st.lists(
    st.tuples(st.sampled_from(["pump-01", "fan-02"]), st.integers(0, 1), st.integers(1, 85)),
    max_size=40,
)


def reference(sequence: list[tuple[str, int, int]]) -> tuple[dict[str, str], int]:
    """Alarm after 3 anomalous in a row, Normal after 3 normal in a row; count alarms."""
    state: dict[str, str] = {}
    run: dict[str, int] = {}
    alarms = 0
    for asset, prediction, _gap in sequence:
        current = state.setdefault(asset, "Normal")
        wanted = 1 if current == "Normal" else 0
        run[asset] = run.get(asset, 0) + 1 if prediction == wanted else 0
        if run[asset] == 3:
            state[asset] = "Alarm" if current == "Normal" else "Normal"
            alarms += current == "Normal"
            run[asset] = 0
    return state, alarms


def _engine(
    store: Any, clock: ManualClock, notifier: InMemoryNotifier, publisher: InMemoryPublisher
) -> DetectorEngine:
    return DetectorEngine(MODEL, [INPUT], store, clock, LocalActionSink(notifier, publisher))


def _message(
    asset: str, prediction: int, i: int, stale_after_s: int | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "asset": asset,
        "thing": asset,
        "timestamp": f"t{i:04d}",
        "prediction": prediction,
        "anomaly_score": 0.9 if prediction else 0.1,
    }
    if stale_after_s is not None:
        message["stale_after_s"] = stale_after_s
    return message


@settings(max_examples=150, deadline=None)
@given(steps)
@example(
    [("pump-01", 0, 1)] + [("fan-02", 0, 1)] * 5 + [("fan-02", 0, 85)] * 6 + [("pump-01", 0, 85)]
)
def test_default_model_matches_its_rule(sequence: list[tuple[str, int, int]]) -> None:
    clock, notifier, publisher = ManualClock(0.0), InMemoryNotifier(), InMemoryPublisher()
    engine = _engine(InMemoryStateStore(), clock, notifier, publisher)
    for i, (asset, prediction, gap) in enumerate(sequence):
        clock.advance(gap)  # 40 steps x 85 s < 1 h: no heartbeat fires
        assert engine.tick() == 0
        engine.put_message("AnomalyResults", _message(asset, prediction, i, stale_after_s=3600))
    expected, alarms = reference(sequence)
    assert {
        k: engine.describe(k)["detector"]["state"]["stateName"] for k in engine.key_values()
    } == expected
    kinds = [n.attributes["kind"] for n in notifier.sent if n.channel == "email"]
    assert kinds.count("ALARM") == alarms
    safe = [p for p in publisher.published if b'"safe"' in p[1]]
    assert len(safe) == alarms


@settings(max_examples=40, deadline=None)
@given(steps, st.integers(0, 40))
def test_a_restart_anywhere_changes_nothing(sequence: list[tuple[str, int, int]], cut: int) -> None:
    def play(restart_at: int | None) -> tuple[list[dict[str, Any]], list[tuple[str, bytes, int]]]:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "state.db"
            clock, notifier, publisher = ManualClock(0.0), InMemoryNotifier(), InMemoryPublisher()
            store = SqliteStateStore(db)
            engine = _engine(store, clock, notifier, publisher)
            for i, (asset, prediction, gap) in enumerate(sequence):
                if i == restart_at:
                    store.close()
                    store = SqliteStateStore(db)
                    engine = _engine(store, clock, notifier, publisher)
                clock.advance(gap * 60)  # long gaps: heartbeats fire and go Stale
                engine.tick()
                engine.put_message("AnomalyResults", _message(asset, prediction, i))
            states = [engine.describe(k) for k in engine.key_values()]
            store.close()
            return states, publisher.published

    assert play(None) == play(cut)
