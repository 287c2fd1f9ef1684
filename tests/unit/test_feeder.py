"""The results feeder: layouts, time order, restart without re-feeding, quarantine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.local import FsObjectStore, InMemoryStateStore, SqliteStateStore
from cloud.detectors import ActionRequest, DetectorEngine, load_detector_model, load_input
from cloud.feeder import (
    ResultsFeeder,
    default_detector_paths,
    mark_existing_fed,
    result_to_message,
)
from edge.clock import ManualClock

PREFIX = "output/"


class Recorder:
    def __init__(self) -> None:
        self.requests: list[ActionRequest] = []

    def execute(self, request: ActionRequest) -> None:
        self.requests.append(request)


class SpyEngine:
    """Wraps a real engine and records what reached it, in order."""

    def __init__(self, engine: DetectorEngine) -> None:
        self.engine = engine
        self.seen: list[dict[str, Any]] = []

    def put_message(
        self, input_name: str, payload: dict[str, Any], message_id: str | None = None
    ) -> None:
        self.seen.append(payload)
        self.engine.put_message(input_name, payload, message_id)


def row(ts: str, prediction: int, score: float | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "timestamp": ts,
        "prediction": prediction,
        "prediction_reason": "ANOMALY_DETECTED" if prediction else "NO_ANOMALY_DETECTED",
    }
    if score is not None:
        doc["anomaly_score"] = score
        doc["diagnostics"] = [
            {"name": "pump-01\\motor_current", "value": 0.22},
            {"name": "pump-01\\bearing_vibration_x", "value": 0.61},
            {"name": "pump-01\\flow", "value": 0.1},
            {"name": "pump-01\\temp", "value": 0.07},
        ]
    doc.update(extra)
    return doc


def put_results(store: FsObjectStore, key: str, rows: list[dict[str, Any]] | list[str]) -> None:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    store.put(key, ("\n".join(lines) + "\n").encode())


def make(tmp_path: Path, state: Any = None) -> tuple[FsObjectStore, SpyEngine, Any]:
    model_path, input_path = default_detector_paths()
    state = state if state is not None else InMemoryStateStore()
    engine = DetectorEngine(
        load_detector_model(model_path), [load_input(input_path)], state, ManualClock(), Recorder()
    )
    return FsObjectStore(tmp_path / "bucket"), SpyEngine(engine), state


def test_result_line_to_message() -> None:
    message = result_to_message("pump-01", row("2026-01-01T00:00:00.000000", 1, 0.83))
    assert message == {
        "asset": "pump-01",
        "timestamp": "2026-01-01T00:00:00.000000",
        "prediction": 1,
        "prediction_reason": "ANOMALY_DETECTED",
        "anomaly_score": 0.83,
        "top_sensor": "pump-01\\bearing_vibration_x",
        "top_share": 0.61,
        "top_sensors": "pump-01\\bearing_vibration_x=0.61;pump-01\\motor_current=0.22;pump-01\\flow=0.1",
    }
    off = result_to_message(
        "pump-01", {"timestamp": "t", "prediction": 0, "prediction_reason": "MACHINE_OFF"}
    )
    assert off == {
        "asset": "pump-01",
        "timestamp": "t",
        "prediction": 0,
        "prediction_reason": "MACHINE_OFF",
    }
    legacy = result_to_message("pump-01", {"timestamp": "t", "prediction": 1})
    assert legacy["prediction_reason"] == "ANOMALY_DETECTED"


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([], "expected a JSON object"),
        ({"prediction": 1}, "'timestamp'"),
        ({"timestamp": "t", "prediction": 2}, "'prediction': expected 0 or 1"),
        ({"timestamp": "t", "prediction": True}, "'prediction'"),
        ({"timestamp": "t", "prediction": 1, "anomaly_score": "high"}, "'anomaly_score'"),
        ({"timestamp": "t", "prediction": 1, "diagnostics": [{"name": 1}]}, "'diagnostics[0]'"),
        ({"timestamp": "t", "prediction": 1, "anomaly_score": 10**400}, "'anomaly_score'"),
        *(
            (
                {"timestamp": "t", "prediction": 1, "diagnostics": [{"name": "a", "value": v}]},
                "'diagnostics[0]'",
            )
            for v in (float("nan"), float("inf"), 10**400, True)
        ),
    ],
)
def test_bad_lines_raise_value_error(doc: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        result_to_message("a", doc)


def test_feeds_rows_of_all_components_in_timestamp_order(tmp_path: Path) -> None:
    store, spy, _ = make(tmp_path)
    put_results(
        store,
        f"{PREFIX}pump-02/2026-01-01T00:05:00Z/results.jsonl",
        [row("2026-01-01T00:05:00.000000", 0, 0.1), row("2026-01-01T00:06:00.000000", 0, 0.1)],
    )
    put_results(
        store,
        f"{PREFIX}pump-01/2026-01-01T00:05:00Z/results.jsonl",
        [row("2026-01-01T00:06:30.000000", 1, 0.9), row("2026-01-01T00:05:30.000000", 1, 0.9)],
    )
    feeder = ResultsFeeder(store, PREFIX, spy, InMemoryStateStore())
    assert feeder.poll() == 4
    assert [(m["asset"], m["timestamp"][11:19]) for m in spy.seen] == [
        ("pump-02", "00:05:00"),
        ("pump-01", "00:05:30"),
        ("pump-02", "00:06:00"),
        ("pump-01", "00:06:30"),
    ]
    assert feeder.poll() == 0
    assert spy.engine.key_values() == ["pump-01", "pump-02"]


def test_flat_layout_with_a_given_component(tmp_path: Path) -> None:
    store, spy, _ = make(tmp_path)
    put_results(
        store,
        f"{PREFIX}2026-01-01T00:05:00Z/results.jsonl",
        [row("2026-01-01T00:05:00.000000", 0, 0.2)],
    )
    feeder = ResultsFeeder(store, PREFIX, spy.engine, InMemoryStateStore(), component="fan-3")
    assert feeder.poll() == 1
    assert spy.engine.key_values() == ["fan-3"]


def test_restart_neither_refeeds_nor_skips(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store, spy, state = make(tmp_path, SqliteStateStore(db))
    put_results(
        store,
        f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl",
        [row(f"2026-01-01T00:00:0{i}.000000", 1, 0.9) for i in range(3)],
    )
    assert ResultsFeeder(store, PREFIX, spy.engine, state).poll() == 3
    assert spy.engine.describe("pump-01")["detector"]["state"]["stateName"] == "Alarm"
    state.close()

    state2 = SqliteStateStore(db)
    model_path, input_path = default_detector_paths()
    engine2 = DetectorEngine(
        load_detector_model(model_path), [load_input(input_path)], state2, ManualClock(), Recorder()
    )
    spy2 = SpyEngine(engine2)
    feeder2 = ResultsFeeder(store, PREFIX, spy2, state2)
    assert feeder2.poll() == 0
    put_results(
        store,
        f"{PREFIX}pump-01/2026-01-01T00:05:00Z/results.jsonl",
        [row("2026-01-01T00:05:00.000000", 0, 0.1)],
    )
    assert feeder2.poll() == 1
    assert [m["timestamp"] for m in spy2.seen] == ["2026-01-01T00:05:00.000000"]


def test_partially_fed_object_resumes_after_the_fed_rows(tmp_path: Path) -> None:
    store, spy, state = make(tmp_path)
    key = f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl"
    put_results(store, key, [row(f"2026-01-01T00:00:0{i}.000000", 0, 0.1) for i in range(4)])
    feeder = ResultsFeeder(store, PREFIX, spy, state)
    state.put(feeder.namespace, key, {"rows": 2, "settled": False})  # a crash after two rows
    assert feeder.poll() == 2
    assert [m["timestamp"][17:19] for m in spy.seen] == ["02", "03"]


def test_malformed_lines_and_keys_are_quarantined_not_dropped(tmp_path: Path) -> None:
    store, spy, state = make(tmp_path)
    put_results(
        store,
        f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl",
        [
            "{not json",
            json.dumps(row("2026-01-01T00:00:01.000000", 7)),
            json.dumps(row("2026-01-01T00:00:02.000000", 0, 0.1)),
        ],
    )
    put_results(
        store,
        f"{PREFIX}pump-01/yesterday/results.jsonl",
        [row("2026-01-01T00:00:00.000000", 0, 0.1)],
    )
    put_results(
        store,
        f"{PREFIX}2026-01-01T00:00:00Z/results.jsonl",
        [row("2026-01-01T00:00:00.000000", 0, 0.1)],
    )
    feeder = ResultsFeeder(store, PREFIX, spy.engine, state)
    assert feeder.poll() == 1
    reasons = dict(feeder.quarantined())
    assert set(reasons) == {
        f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl#1",
        f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl#2",
        f"{PREFIX}pump-01/yesterday/results.jsonl#0",
        f"{PREFIX}2026-01-01T00:00:00Z/results.jsonl#0",
    }
    assert "expected 0 or 1" in reasons[f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl#2"]
    assert feeder.poll() == 0


def test_a_growing_object_is_reread_until_a_later_window_exists(tmp_path: Path) -> None:
    store, spy, state = make(tmp_path)
    first = f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl"
    feeder = ResultsFeeder(store, PREFIX, spy, state)
    lines = [row("2026-01-01T00:00:00.000000", 0, 0.1)]
    put_results(store, first, lines)
    assert feeder.poll() == 1
    lines.append(row("2026-01-01T00:01:00.000000", 1, 0.9))  # streaming mode rewrites the window
    put_results(store, first, lines)
    assert feeder.poll() == 1
    put_results(
        store,
        f"{PREFIX}pump-01/2026-01-01T00:05:00Z/results.jsonl",
        [row("2026-01-01T00:05:00.000000", 1, 0.9)],
    )
    assert feeder.poll() == 1
    assert state.get(feeder.namespace, first) == {"rows": 2, "settled": True}
    assert [m["timestamp"][11:16] for m in spy.seen] == ["00:00", "00:01", "00:05"]
    assert feeder.poll() == 0


def test_feed_one_object_by_key_as_an_s3_event_names_it(tmp_path: Path) -> None:
    store, spy, state = make(tmp_path)
    key = "output/pump-01/2026-01-01T00:00:00Z/results.jsonl"
    put_results(
        store,
        key,
        [row("2026-01-01T00:02:00.000000", 1, 0.9), row("2026-01-01T00:01:00.000000", 0, 0.1)],
    )
    feeder = ResultsFeeder(store, PREFIX, spy, state)
    assert feeder.feed(key) == 2
    assert [m["timestamp"][14:16] for m in spy.seen] == ["01", "02"]
    assert feeder.feed(key) == 0  # a redelivered event feeds nothing
    put_results(  # the object rewritten with one more row (streaming layout)
        store,
        key,
        [
            row("2026-01-01T00:02:00.000000", 1, 0.9),
            row("2026-01-01T00:01:00.000000", 0, 0.1),
            row("2026-01-01T00:03:00.000000", 1, 0.8),
        ],
    )
    assert feeder.feed(key) == 1
    assert spy.seen[-1]["timestamp"] == "2026-01-01T00:03:00.000000"
    assert feeder.poll() == 0  # poll and feed share the progress


def test_feed_quarantines_keys_outside_the_layout(tmp_path: Path) -> None:
    store, spy, state = make(tmp_path)
    feeder = ResultsFeeder(store, PREFIX, spy, state)
    for key in ("elsewhere/pump-01/2026-01-01T00:00:00Z/results.jsonl", "output/x/results.jsonl"):
        put_results(store, key, [row("2026-01-01T00:01:00.000000", 1, 0.9)])
        assert feeder.feed(key) == 0
    assert spy.seen == []
    reasons = dict(feeder.quarantined())
    assert reasons == {
        "elsewhere/pump-01/2026-01-01T00:00:00Z/results.jsonl#0": (
            "not a results.jsonl under 'output/'"
        ),
        "output/x/results.jsonl#0": (
            "not [<site>/]<component>/<yyyy-MM-ddTHH:mm:ssZ>/results.jsonl"
        ),
    }


def test_a_prefix_a_feeder_already_worked_on_is_not_baselined(tmp_path: Path) -> None:
    """A data folder from a version without the baseline record: the results its feeder had
    not fed yet (written just before a crash) are a catch-up, fed on the next start."""
    store, spy, state = make(tmp_path)
    fed = f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl"
    put_results(store, fed, [row("2026-01-01T00:00:00.000000", 0, 0.1)])
    assert ResultsFeeder(store, PREFIX, spy, state).poll() == 1
    unfed = f"{PREFIX}pump-01/2026-01-01T00:05:00Z/results.jsonl"
    put_results(store, unfed, [row("2026-01-01T00:05:00.000000", 1, 0.9)])
    assert mark_existing_fed(store, PREFIX, state) == 0
    assert ResultsFeeder(store, PREFIX, spy, state).poll() == 1
    assert [m["timestamp"][11:16] for m in spy.seen] == ["00:00", "00:05"]


def test_results_already_under_the_prefix_at_first_start_are_history_not_news(
    tmp_path: Path,
) -> None:
    # GIVEN a prefix carried over with L4E's past results, one of them anomalous
    store, spy, state = make(tmp_path)
    old = f"{PREFIX}pump-01/2025-06-01T00:00:00Z/results.jsonl"
    put_results(store, old, [row("2025-06-01T00:00:00.000000", 1, 0.9)] * 3)
    # WHEN a stack starts on it for the first time, THEN those rows are not fed
    assert mark_existing_fed(store, PREFIX, state) == 1
    feeder = ResultsFeeder(store, PREFIX, spy, state)
    assert feeder.poll() == 0
    # AND results written from then on are fed as usual
    new = f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl"
    put_results(store, new, [row("2026-01-01T00:00:00.000000", 0, 0.1)])
    assert feeder.poll() == 1
    # AND later starts mark nothing: a catch-up written before the first poll is still fed
    later = f"{PREFIX}pump-01/2026-01-01T00:05:00Z/results.jsonl"
    put_results(store, later, [row("2026-01-01T00:05:00.000000", 0, 0.1)])
    assert mark_existing_fed(store, PREFIX, state) == 0
    assert ResultsFeeder(store, PREFIX, spy, state).poll() == 1
    assert [m["timestamp"][:10] for m in spy.seen] == ["2026-01-01", "2026-01-01"]


def test_a_row_holding_a_lone_surrogate_is_quarantined_and_the_rest_fed(tmp_path: Path) -> None:
    """``"\\ud800"`` decodes to no Unicode character: no store can keep it, so fed it would
    fail the poll for good, every time, and hold back every row after it."""
    store, spy, state = make(tmp_path)
    key = f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl"
    put_results(
        store,
        key,
        [
            json.dumps(row("2026-01-01T00:00:01.000000", 1, prediction_reason="\ud800")),
            json.dumps(row("2026-01-01T00:00:02.000000", 0, 0.1)),
        ],
    )
    feeder = ResultsFeeder(store, PREFIX, spy, state)
    assert feeder.poll() == 1
    reasons = dict(feeder.quarantined())
    assert list(reasons) == [f"{key}#1"]
    assert "prediction_reason" in reasons[f"{key}#1"]
    assert "not a Unicode character" in reasons[f"{key}#1"]
    assert [m["timestamp"][17:19] for m in spy.seen] == ["02"]


def test_streamed_lines_holding_a_lone_surrogate_are_quarantined(tmp_path: Path) -> None:
    store, spy, state = make(tmp_path)
    key = f"{PREFIX}pump-01/2026-01-01T00:00:00Z/results.jsonl"
    feeder = ResultsFeeder(store, PREFIX, spy, state)
    bad = row("2026-01-01T00:00:01.000000", 1, 0.9)
    bad["diagnostics"][0]["name"] = "pump-01\\\udcff"
    assert feeder.feed_lines(key, 0, [bad, row("2026-01-01T00:00:02.000000", 0, 0.1)]) == 1
    assert "not a Unicode character" in dict(feeder.quarantined())[f"{key}#1"]
