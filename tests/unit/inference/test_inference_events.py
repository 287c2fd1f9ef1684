"""Events span executions, break on failures, average diagnostics; lifecycle rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cloud.adapters.local import InMemoryObjectStore, InMemoryStateStore
from cloud.inference.events import list_events
from cloud.inference.results import encode_results
from cloud.inference.scheduler import (
    Execution,
    SchedulerConfig,
    create_scheduler,
    delete_scheduler,
    describe_scheduler,
    start_scheduler,
    stop_scheduler,
)
from edge.errors import ConflictError, NotFoundError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def line(minute: int, flagged: int, flow: float = 0.5) -> dict:
    return {
        "timestamp": (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "prediction": flagged,
        "prediction_reason": "ANOMALY_DETECTED" if flagged else "NO_ANOMALY_DETECTED",
        "anomaly_score": 0.9 if flagged else 0.1,
        "diagnostics": [{"name": "p\\flow", "value": flow}, {"name": "p\\temp", "value": 1 - flow}],
    }


def execution(store: InMemoryObjectStore, start_min: int, lines: list[dict] | None) -> Execution:
    start = T0 + timedelta(minutes=start_min)
    key = f"out/{start:%Y-%m-%dT%H:%M:%SZ}/results.jsonl"
    if lines is not None:
        store.put(key, encode_results(lines))
    return Execution(
        "s",
        start,
        start + timedelta(minutes=5),
        start + timedelta(minutes=5),
        "SUCCESS" if lines is not None else "FAILED",
        None if lines is not None else "no data",
        key if lines is not None else None,
        (key,) if lines is not None else (),
    )


def test_event_spans_executions_and_averages_diagnostics() -> None:
    store = InMemoryObjectStore()
    runs = [
        execution(
            store, 0, [line(1, 0), line(2, 0), line(3, 1, 0.8), line(4, 1, 0.6), line(5, 1, 0.7)]
        ),
        execution(store, 5, [line(6, 1, 0.9), line(7, 0), line(8, 0), line(9, 1), line(10, 1)]),
        execution(store, 10, None),
        execution(store, 15, [line(16, 1), line(17, 0)]),
    ]
    events = list_events(runs, store, "out/")
    assert [(e.start.minute, e.end.minute, e.duration_s) for e in events] == [
        (3, 6, 180),
        (9, 10, 60),  # the failed execution ends it
        (16, 16, 0),
    ]
    summary = events[0].to_summary()
    assert json.loads(summary["Diagnostics"]) == {
        "diagnostics": [{"name": "p\\flow", "value": 0.75}, {"name": "p\\temp", "value": 0.25}]
    }
    assert summary["EventStartTime"] == "2026-01-01T00:03:00.000000Z"
    window = list_events(runs, store, "out/", T0 + timedelta(minutes=8), T0 + timedelta(minutes=12))
    assert [e.start.minute for e in window] == [9]


def test_a_window_that_never_ran_ends_an_event() -> None:
    # GIVEN anomalous rows up to 00:05 and again from 00:11, the window (00:05, 00:10]
    # never run (the scheduler was stopped): the rows are not consecutive
    store = InMemoryObjectStore()
    runs = [
        execution(store, 0, [line(4, 1), line(5, 1)]),
        execution(store, 10, [line(11, 1), line(12, 0)]),
    ]
    events = list_events(runs, store, "out/")
    assert [(e.start.minute, e.end.minute) for e in events] == [(4, 5), (11, 11)]


@pytest.mark.parametrize("component", [None, "pump"])
def test_a_window_whose_results_object_is_gone_ends_an_event(component: str | None) -> None:
    # GIVEN anomalous rows up to 00:05 and from 00:11, and the window (00:05, 00:10] run
    # with success but its results object gone since (deleted by hand, lost in a copy):
    # nothing says its rows were anomalous, so the rows around it are not consecutive
    store = InMemoryObjectStore()
    runs = [
        execution(store, 0, [line(4, 1), line(5, 1)]),
        execution(store, 5, [line(6, 1), line(7, 1), line(8, 1), line(9, 1), line(10, 1)]),
        execution(store, 10, [line(11, 1), line(12, 0)]),
    ]
    if component is not None:  # a fleet scheduler's <component>/<DataStartTime>/ layout
        for run in runs:
            moved = run.result_keys[0].replace("out/", f"out/{component}/")
            store.put(moved, store.get(run.result_keys[0]))
            store.delete(run.result_keys[0])
            run.result_key, run.result_keys = moved, (moved,)
    store.delete(runs[1].result_keys[0])
    # THEN the event ends with the last row read before it, as a failed window ends one
    events = list_events(runs, store, "out/")
    assert [(e.start.minute, e.end.minute, e.component) for e in events] == [
        (4, 5, component),
        (11, 11, component),
    ]


def test_scheduler_lifecycle_rules() -> None:
    state = InMemoryStateStore()
    config = SchedulerConfig(name="s", model_name="m")
    create_scheduler(state, config, T0.timestamp())
    with pytest.raises(ConflictError, match="one per model"):
        create_scheduler(state, SchedulerConfig(name="t", model_name="m"), 0)
    # another site's input folder may have its own scheduler of the same model
    create_scheduler(state, SchedulerConfig(name="u", model_name="m", input_prefix="input/s2/"), 0)
    with pytest.raises(ConflictError, match="RUNNING"):
        delete_scheduler(state, "s")
    assert stop_scheduler(state, "s")["status"] == "STOPPED"
    start_scheduler(state, "s", T0.timestamp() + 600)
    described = describe_scheduler(state, "s")
    assert described["Status"] == "RUNNING"
    assert described["StartedAt"] == "2026-01-01T00:10:00Z"
    stop_scheduler(state, "s")
    delete_scheduler(state, "s")
    with pytest.raises(NotFoundError):
        describe_scheduler(state, "s")


def test_diagnostics_of_many_long_sensor_names_fit_l4e_s_50000_characters() -> None:
    # GIVEN an event over 300 sensors (L4E's most per model) named with 200-character
    # components and sensors (§1.1, §1.4)
    names = [f"{'c' * 200}\\{k:03d}{'s' * 197}" for k in range(300)]
    weights = [k + 1 for k in range(300)]
    shares = [w / sum(weights) for w in weights]
    lines = [
        {
            "timestamp": (T0 + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "prediction": 1,
            "diagnostics": [
                {"name": n, "value": round(v, 5)} for n, v in zip(names, shares, strict=True)
            ],
        }
        for m in (1, 2)
    ]
    store = InMemoryObjectStore()
    [event] = list_events([execution(store, 0, lines)], store, "out/")
    # THEN Diagnostics is a JSON string of at most 50,000 characters (§6) holding the
    # sensors that contributed most, each with its mean share, largest first kept
    text = event.to_summary()["Diagnostics"]
    assert len(text) <= 50_000
    kept = json.loads(text)["diagnostics"]
    assert 0 < len(kept) < 300
    assert [d["name"] for d in kept] == names[-len(kept) :]
    assert kept[-1]["value"] == round(shares[-1], 5)
