"""An alarm's state change is one SQLite commit: the instance, its history entry and its
budget spend together; the notifications are handed over after it, so no send (an SMTP
or MQTT stall) holds the database's write lock that a CLI beside the stack needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cloud.adapters.local import InMemoryNotifier, InMemoryPublisher, SqliteStateStore
from cloud.detectors import default_detector_paths, load_input
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.alarms import AlarmEngine, NotificationLimiter, load_alarm_model
from cloud.detectors.alarms.model import default_alarm_path
from cloud.ports import Notification
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


class LockCheckingNotifier(InMemoryNotifier):
    """Records whether a batch (a transaction holding the write lock) was open at each send."""

    def __init__(self, store: CountingStore) -> None:
        super().__init__()
        self._store = store
        self.in_batch: list[bool] = []

    def send(self, notification: Notification) -> None:
        self.in_batch.append(self._store.depth > 0)
        super().send(notification)


def result(score: float) -> dict[str, Any]:
    return {"asset": "pump-02", "timestamp": "2026-01-01T00:00:00.000000", "anomaly_score": score}


def test_a_state_change_is_one_commit_and_sends_after_it(tmp_path: Path) -> None:
    store, clock = CountingStore(tmp_path / "state.db"), ManualClock()
    limiter = NotificationLimiter(store)
    notifier = LockCheckingNotifier(store)
    sink = LocalActionSink(notifier, InMemoryPublisher(), state=store, limiter=limiter)
    alarm = AlarmEngine(
        load_alarm_model(default_alarm_path()),
        [load_input(default_detector_paths()[1])],
        store,
        clock,
        sink,
        limiter=limiter,
    )
    alarm.put_message("AnomalyResults", result(0.2))  # a new instance: written on its own
    store.batches = store.unbatched_writes = 0
    alarm.put_message("AnomalyResults", result(0.9))  # NORMAL -> ACTIVE, notified
    assert alarm.state_of("pump-02") == "ACTIVE"
    assert store.batches == 1  # instance, history entry, budget: one commit
    assert [n.attributes["kind"] for n in notifier.sent] == ["ALARM_ACTIVE", "ALARM_ACTIVE"]
    assert notifier.in_batch == [False, False]  # sent after the commit
    assert [e["to"] for _k, e in store.items("alarm-history/anomaly_score")] == ["ACTIVE"]
    store.batches = store.unbatched_writes = 0
    alarm.put_message("AnomalyResults", result(0.95))  # still ACTIVE: only the last value
    assert store.batches == 0 and store.unbatched_writes == 0  # written at the next flush
    clock.advance(60)
    alarm.tick()  # the flush: one batch for every instance changed since
    assert store.batches == 1
    doc = store.get("alarms/anomaly_score", "pump-02")
    assert doc is not None and doc["value"] == 0.95 and doc["pending"] == []
