"""Streaming results: the sink appends a window's lines and tells the feeder, which feeds
exactly those rows, or reads the object when it has fallen behind; a torn line is dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.local import FsObjectStore, InMemoryObjectStore, InMemoryStateStore
from cloud.feeder import ResultsFeeder
from cloud.inference.streaming import WindowedObjectSink

KEY = "stream/pump-01/2026-01-01T00:00:00Z/results.jsonl"


def line(second: int, prediction: int = 0) -> dict[str, Any]:
    return {
        "timestamp": f"2026-01-01T00:00:{second + 1:02d}.000000",  # window (00:00, 00:05]
        "prediction": prediction,
        "prediction_reason": "ANOMALY_DETECTED" if prediction else "NO_ANOMALY_DETECTED",
        "anomaly_score": 0.7 if prediction else 0.1,
        "diagnostics": [{"name": "pump-01\\flow", "value": 1.0}],
    }


class Engine:
    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], str | None]] = []

    def put_message(self, _name: str, payload: dict[str, Any], message_id: str | None = None):
        self.messages.append((payload, message_id))


def test_sink_appends_and_tells_each_write(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = FsObjectStore(tmp_path)
    told: list[tuple[str, int, int]] = []
    sink = WindowedObjectSink(
        store, on_stored=lambda a, k, first, new: told.append((k, first, len(new)))
    )
    sink.write("pump-01", [line(0), line(1)])
    puts: list[str] = []
    monkeypatch.setattr(store, "put", lambda key, body: puts.append(key))
    sink.write("pump-01", [line(2)])
    sink.write("pump-01", [line(3, 1)])
    assert puts == []  # appended, not rewritten
    stored = [json.loads(x) for x in store.get(KEY).splitlines()]
    assert [x["timestamp"][-9:-7] for x in stored] == ["01", "02", "03", "04"]
    assert told == [(KEY, 0, 2), (KEY, 2, 1), (KEY, 3, 1)]


def test_a_restarted_sink_drops_a_torn_line_and_repeated_rows(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path)
    WindowedObjectSink(store).write("pump-01", [line(0), line(1), line(2)])
    store.append(KEY, b'{"timestamp": "2026-01-01T00:00:0')  # a crash in mid-append
    WindowedObjectSink(store).write("pump-01", [line(2), line(3)])  # message 2 redelivered
    stamps = [json.loads(x)["timestamp"][-9:-7] for x in store.get(KEY).splitlines()]
    assert stamps == ["01", "02", "03", "04"]


def test_a_store_without_append_gets_the_window_rewritten() -> None:
    store = InMemoryObjectStore()
    sink = WindowedObjectSink(store)
    for second in range(3):
        sink.write("pump-01", [line(second)])
    assert len(store.get(KEY).splitlines()) == 3


def test_feeder_feeds_told_rows_and_catches_up_from_the_object(tmp_path: Path) -> None:
    store, state, engine = FsObjectStore(tmp_path), InMemoryStateStore(), Engine()
    feeder = ResultsFeeder(store, "stream/", engine, state)
    sink = WindowedObjectSink(
        store, on_stored=lambda _a, k, first, new: feeder.feed_lines(k, first, new)
    )
    sink.write("pump-01", [line(0), line(1, 1)])
    assert [m["prediction"] for m, _ in engine.messages] == [0, 1]
    quiet = WindowedObjectSink(store)  # writes the feeder does not hear of
    quiet.write("pump-01", [line(2)])
    quiet.write("pump-01", [line(3, 1)])
    quiet.write("pump-01", [line(4)])
    assert feeder.feed_lines(KEY, 4, [line(4)]) == 3  # behind: rows 2-4 read from the object
    assert [m["timestamp"][-9:-7] for m, _ in engine.messages] == ["01", "02", "03", "04", "05"]
    assert feeder.poll() == 0  # nothing fed twice
    ids = [i for _, i in engine.messages]
    assert len(set(ids)) == 5
    polled = Engine()
    ResultsFeeder(store, "stream/", polled, InMemoryStateStore()).poll()
    assert [i for _, i in polled.messages][:4] == ids[:4]  # the same message ids either way


class FailingOnce(Engine):
    """Refuses the message at *second* once (its store throttled), takes everything else."""

    def __init__(self, second: int) -> None:
        super().__init__()
        self.second = second

    def put_message(self, _name: str, payload: dict[str, Any], message_id: str | None = None):
        if payload["timestamp"] == line(self.second)["timestamp"]:
            self.second = -1
            raise RuntimeError("state table throttled")
        super().put_message(_name, payload, message_id)


def test_rows_fed_before_a_failure_are_not_fed_again(tmp_path: Path) -> None:
    """A told batch that fails at its second row keeps the first as fed: the catch-up that
    follows (the next write, or a poll) starts at the failed row."""
    store, state, engine = FsObjectStore(tmp_path), InMemoryStateStore(), FailingOnce(1)
    feeder = ResultsFeeder(store, "stream/", engine, state)
    lines = [line(0), line(1), line(2)]
    store.put(KEY, "".join(json.dumps(x) + "\n" for x in lines).encode())
    with pytest.raises(RuntimeError, match="throttled"):
        feeder.feed_lines(KEY, 0, lines)
    assert feeder.poll() == 2
    assert [m["timestamp"][-9:-7] for m, _ in engine.messages] == ["01", "02", "03"]


def test_told_rows_carry_the_silence_the_model_waits_for_as_polled_rows_do(tmp_path: Path) -> None:
    """``stale_after_s`` goes with every message, in streaming mode too (docs/detectors.md):
    without it the model waits its default 600 s whatever the upload frequency."""
    store, engine = FsObjectStore(tmp_path), Engine()
    feeder = ResultsFeeder(store, "stream/", engine, InMemoryStateStore(), stale_after_s=120.0)
    sink = WindowedObjectSink(
        store, on_stored=lambda _a, k, first, new: feeder.feed_lines(k, first, new)
    )
    sink.write("pump-01", [line(0)])
    polled = Engine()
    ResultsFeeder(store, "stream/", polled, InMemoryStateStore(), stale_after_s=120.0).poll()
    assert [m.get("stale_after_s") for m, _ in engine.messages] == [120.0]
    assert engine.messages == polled.messages
