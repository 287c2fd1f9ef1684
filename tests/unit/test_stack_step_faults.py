"""One failing duty of the local stack's step holds up none of the others.

The step feeds the detectors, fires the detector model's timers, the alarm models'
reminders and snooze expiries, and retries the action outbox. A row one model cannot save,
or a timer whose instance cannot be saved, fails again at every step until it is fixed:
meanwhile the other models' timers still fire and failed alerts are still retried, as the
timers Lambda does (``cloud.handlers.timers``: every timer and retry runs, then the first
failure is raised). The step still raises that first failure, so the loop logs it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters.local import FsObjectStore
from cloud.detectors.router import MessageRouter
from cloud.feeder import ResultsFeeder
from cloud.runtime.layout import DataLayout
from cloud.runtime.stack import LocalStack, StackConfig
from edge.clock import ManualClock
from edge.errors import StorageError


class Duty:
    """Stands in for the feeder, an engine or the outbox: counts calls, may fail."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return 0


class Part:
    def __init__(self, **duties: Duty) -> None:
        for name, duty in duties.items():
            setattr(self, name, duty)


@pytest.fixture
def stack(tmp_path: Path) -> LocalStack:
    made = LocalStack(StackConfig(DataLayout.at(tmp_path / "data")), ManualClock(1_000.0))
    made.batcher = Part(flush_due=lambda: [])
    made.router = MessageRouter([])
    return made


def test_a_detector_timer_that_fails_holds_up_neither_the_alarms_nor_the_retries(
    stack: LocalStack,
) -> None:
    feed, retry = Duty(), Duty()
    reminders = Duty()
    stack.feeder = Part(poll=feed)
    stack.detectors = {"m": Part(tick=Duty(StorageError("instance not saved")))}
    stack.alarms = {"boiler": Part(tick=reminders, close=Duty())}
    stack.outbox = Part(retry_due=retry)
    with pytest.raises(StorageError, match="instance not saved"):
        stack.step()
    assert (feed.calls, reminders.calls, retry.calls) == (1, 1, 1)


def test_a_row_that_cannot_be_fed_holds_up_neither_the_timers_nor_the_retries(
    stack: LocalStack,
) -> None:
    timers, retry = Duty(), Duty()
    stack.feeder = Part(poll=Duty(StorageError("row not saved")))
    stack.detectors = {"m": Part(tick=timers)}
    stack.outbox = Part(retry_due=retry)
    with pytest.raises(StorageError, match="row not saved"):
        stack.step()
    assert (timers.calls, retry.calls) == (1, 1)


def test_one_alarm_model_failing_holds_up_neither_the_next_one_nor_the_retries(
    stack: LocalStack,
) -> None:
    second, retry = Duty(), Duty()
    stack.feeder = Part(poll=Duty())
    stack.alarms = {
        "first": Part(tick=Duty(StorageError("reminder not saved")), close=Duty()),
        "second": Part(tick=second, close=Duty()),
    }
    stack.outbox = Part(retry_due=retry)
    with pytest.raises(StorageError, match="reminder not saved"):
        stack.step()
    assert (second.calls, retry.calls) == (1, 1)


class Model:
    """A model reading ``AnomalyResults``: keeps the timestamps it took; refuses the first
    *failures* rows (its store throttled)."""

    def __init__(self, name: str, failures: int = 0) -> None:
        self.namespace = f"detectors/{name}"
        self.inputs: Mapping[str, Any] = {"AnomalyResults": None}
        self.failures = failures
        self.seen: list[str] = []

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageError(f"{self.namespace}: row not saved")
        self.seen.append(payload["timestamp"])


def test_a_row_one_model_failed_is_fed_to_it_again_at_the_next_step(
    stack: LocalStack, tmp_path: Path
) -> None:
    """The feeder's rows reach the models while the step runs, not after it: a row a model
    could not save stays unfed, and the next step gives it to that model (and only it)."""
    store = FsObjectStore(tmp_path / "bucket")
    row = {"timestamp": "2026-01-01T00:00:01.000000", "prediction": 0}
    store.put("output/pump-01/2026-01-01T00:00:00Z/results.jsonl", json.dumps(row).encode())
    taker, refuser = Model("a"), Model("b", failures=1)
    stack.router = MessageRouter([taker, refuser], stack.state, stack.clock)
    stack.feeder = ResultsFeeder(store, "output/", stack.router, stack.state)
    stack.outbox = Part(retry_due=Duty())
    with pytest.raises(StorageError, match="row not saved"):
        stack.step()
    stack.step()
    assert (taker.seen, refuser.seen) == ([row["timestamp"]], [row["timestamp"]])


def test_a_backlog_of_rows_is_fed_whole_in_one_step(stack: LocalStack, tmp_path: Path) -> None:
    """Rows the feeder sends are not messages put back by actions: a catch-up of more rows
    than an evaluation may put back is fed, not refused past the bound."""
    store = FsObjectStore(tmp_path / "bucket")
    rows = [
        {"timestamp": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000000", "prediction": 0}
        for n in range(1_200)
    ]
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    store.put("output/pump-01/2026-01-01T00:00:00Z/results.jsonl", body)
    model = Model("a")
    stack.router = MessageRouter([model], stack.state, stack.clock)
    stack.feeder = ResultsFeeder(store, "output/", stack.router, stack.state)
    stack.outbox = Part(retry_due=Duty())
    stack.step()
    assert len(model.seen) == 1_200


def test_a_streamed_row_a_model_failed_is_fed_to_it_after_its_window_closed(
    tmp_path: Path,
) -> None:
    """Streaming feeds what the sink tells, and catches an object up only when the sink next
    writes it. A row that failed in a window's last write would wait for a write that never
    comes (the next rows go to the next window's object): after a failed pass the loop polls,
    which reads every object not fed to its end."""
    config = StackConfig(DataLayout.at(tmp_path / "data"), streaming=True, poll_interval_s=0.01)
    stack = LocalStack(config, ManualClock(1_000.0))
    stack.batcher = Part(flush_due=lambda: [])
    stack.outbox = Part(retry_due=Duty())
    store = FsObjectStore(tmp_path / "bucket")
    taker, refuser = Model("a"), Model("b", failures=1)
    stack.router = MessageRouter([taker, refuser], stack.state, stack.clock)
    stack.feeder = ResultsFeeder(store, "stream/", stack.router, stack.state)
    windows = ["2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"]
    rows = [{"timestamp": f"2026-01-01T00:0{n}:01.000000", "prediction": 0} for n in (4, 9)]
    loop = threading.Thread(target=stack._loop, daemon=True)
    loop.start()
    try:
        for window, row in zip(windows, rows, strict=True):
            key = f"stream/pump-01/{window}/results.jsonl"
            store.put(key, (json.dumps(row) + "\n").encode())
            stack._on_stored("pump-01", key, 0, [row])
            time.sleep(0.2)
        deadline = time.monotonic() + 5
        while len(refuser.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stack._stop.set()
        loop.join(5)
    stamps = [r["timestamp"] for r in rows]
    assert (taker.seen, refuser.seen) == (stamps, stamps)
