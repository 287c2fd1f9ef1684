"""The router delivers an outside message to every model reading its input (§1), and a retry
of the same message (same ``messageId``) reaches only the models that did not get it.

AWS BatchPutMessage ingests a message "into any detectors that monitor that input": one
model failing keeps it from no other. The caller (the feeder) retries a message that failed;
the models that took it the first time must not evaluate it twice (a count of anomalous rows
in a row would count one row twice), so the router records, in the state store, which
models a message reached until it has reached them all.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local import FsObjectStore, InMemoryStateStore, SqliteStateStore
from cloud.detectors.messages import batch_put_message
from cloud.detectors.router import MessageRouter
from cloud.feeder import ResultsFeeder
from edge.clock import ManualClock
from edge.errors import NotFoundError, StorageError

PARTIAL_NAMESPACE = "router/partial"
PARTIAL_RETENTION_S = 14 * 86400.0


class Model:
    """A model reading ``In``: keeps the ``n`` of each message it took; refuses the first
    *failures* messages (its store throttled)."""

    def __init__(self, name: str, failures: int = 0) -> None:
        self.namespace = f"detectors/{name}"
        self.inputs: Mapping[str, Any] = {"In": None}
        self.seen: list[Any] = []
        self.failures = failures

    def put_message(
        self, input_name: str, payload: Mapping[str, Any], message_id: str | None = None
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageError(f"{self.namespace}: state table throttled")
        self.seen.append(payload.get("n"))


def test_a_model_that_fails_keeps_the_message_from_no_model_after_it() -> None:
    first, broken, last = Model("a"), Model("b", failures=1), Model("c")
    router = MessageRouter([first, broken, last])
    with pytest.raises(StorageError, match="detectors/b"):
        router.put_message("In", {"n": 1}, "m1")
    assert (first.seen, broken.seen, last.seen) == ([1], [], [1])


def test_a_retry_reaches_only_the_models_that_missed_the_message() -> None:
    first, broken, last = Model("a"), Model("b", failures=2), Model("c")
    router = MessageRouter([first, broken, last], InMemoryStateStore(), ManualClock())
    for _ in range(2):
        with pytest.raises(StorageError):
            router.put_message("In", {"n": 1}, "m1")
    router.put_message("In", {"n": 1}, "m1")
    assert (first.seen, broken.seen, last.seen) == ([1], [1], [1])


def test_what_a_message_reached_survives_a_restart_and_is_forgotten_once_it_reached_all() -> None:
    state, clock = InMemoryStateStore(), ManualClock()
    first, broken = Model("a"), Model("b", failures=1)
    with pytest.raises(StorageError):
        MessageRouter([first, broken], state, clock).put_message("In", {"n": 1}, "m1")
    record = dict(state.items(PARTIAL_NAMESPACE))
    assert len(record) == 1
    (stored,) = record.values()
    assert stored["delivered"] == ["detectors/a"]
    assert stored["expires_at"] == clock.now() + PARTIAL_RETENTION_S
    MessageRouter([first, broken], state, clock).put_message("In", {"n": 1}, "m1")
    assert (first.seen, broken.seen) == ([1], [1])
    assert list(state.items(PARTIAL_NAMESPACE)) == []


def test_a_record_past_its_expiry_no_longer_holds_the_message_back() -> None:
    """14 days on (the feeder's own progress records expire then too) the message is news
    again: it goes to every model."""
    state, clock = InMemoryStateStore(), ManualClock()
    first, broken = Model("a"), Model("b", failures=1)
    router = MessageRouter([first, broken], state, clock)
    with pytest.raises(StorageError):
        router.put_message("In", {"n": 1}, "m1")
    clock.advance(PARTIAL_RETENTION_S + 1)
    MessageRouter([first, broken], state, clock).put_message("In", {"n": 1}, "m1")
    assert (first.seen, broken.seen) == ([1, 1], [1])


def test_expired_records_leave_the_sqlite_store_even_when_never_retried(tmp_path: Path) -> None:
    """DynamoDB TTL removes a record 14 days on; locally the router does, so a store that
    sees a failure now and then does not grow forever."""
    state, clock = SqliteStateStore(tmp_path / "state.db"), ManualClock()
    first = Model("a")
    for day, message_id in enumerate(("m1", "m2", "m3")):
        broken = Model("b", failures=1)
        with pytest.raises(StorageError):
            MessageRouter([first, broken], state, clock).put_message("In", {"n": day}, message_id)
        clock.advance(PARTIAL_RETENTION_S / 2 + 1)
    assert [key for key, _ in state.items(PARTIAL_NAMESPACE)] == ["In/m2", "In/m3"]


def test_an_expired_record_is_removed_when_a_late_retry_reaches_every_model(
    tmp_path: Path,
) -> None:
    state, clock = SqliteStateStore(tmp_path / "state.db"), ManualClock()
    first, broken = Model("a"), Model("b", failures=1)
    with pytest.raises(StorageError):
        MessageRouter([first, broken], state, clock).put_message("In", {"n": 1}, "m1")
    clock.advance(PARTIAL_RETENTION_S + 1)
    MessageRouter([first, broken], state, clock).put_message("In", {"n": 1}, "m1")
    assert list(state.items(PARTIAL_NAMESPACE)) == []


def test_expired_records_kept_in_memory_are_dropped_too() -> None:
    """Without a state store the records live in the router, as long as it does."""
    clock = ManualClock()
    router = MessageRouter([Model("a"), Model("b", failures=100)], None, clock)
    for n in range(50):
        with pytest.raises(StorageError):
            router.put_message("In", {"n": n}, f"m{n}")
        clock.advance(PARTIAL_RETENTION_S / 10)
    assert len(router._partial) <= 11


def test_messages_without_an_id_or_with_another_id_are_not_held_back() -> None:
    first, broken = Model("a"), Model("b", failures=1)
    router = MessageRouter([first, broken], InMemoryStateStore(), ManualClock())
    with pytest.raises(StorageError):
        router.put_message("In", {"n": 1}, "m1")
    router.put_message("In", {"n": 2}, "m2")
    router.put_message("In", {"n": 3})
    assert (first.seen, broken.seen) == ([1, 2, 3], [2, 3])


def test_a_message_id_already_processed_is_ignored_the_first_message_wins() -> None:
    """AWS IotEventsAction.messageId: set it "to ensure that only one input (message) with a
    given messageId will be processed by an AWS IoT Events detector"."""
    first, second = Model("a"), Model("b")
    router = MessageRouter([first, second], InMemoryStateStore(), ManualClock())
    router.put_message("In", {"n": 1}, "m1")
    router.put_message("In", {"n": 2}, "m1")
    router.put_message("In", {"n": 3}, "m2")
    assert (first.seen, second.seen) == ([1, 3], [1, 3])


def test_a_message_id_is_remembered_for_five_minutes() -> None:
    """Five minutes, as AWS; kept in memory, so the memory stays bounded."""
    clock = ManualClock()
    model = Model("a")
    router = MessageRouter([model], InMemoryStateStore(), clock)
    router.put_message("In", {"n": 1}, "m1")
    router.put_message("In", {"n": 2}, "m2")
    clock.advance(299)
    router.put_message("In", {"n": 3}, "m2")
    clock.advance(1)
    router.put_message("In", {"n": 4}, "m1")
    assert model.seen == [1, 2, 4]


def test_a_message_that_failed_is_not_processed_so_its_id_does_not_hold_the_retry_back() -> None:
    first, broken = Model("a"), Model("b", failures=1)
    router = MessageRouter([first, broken], InMemoryStateStore(), ManualClock())
    with pytest.raises(StorageError):
        router.put_message("In", {"n": 1}, "m1")
    router.put_message("In", {"n": 1}, "m1")
    router.put_message("In", {"n": 1}, "m1")
    assert (first.seen, broken.seen) == ([1], [1])


def test_messages_without_an_id_are_each_processed() -> None:
    model = Model("a")
    router = MessageRouter([model], InMemoryStateStore(), ManualClock())
    router.put_message("In", {"n": 1})
    router.put_message("In", {"n": 1})
    assert model.seen == [1, 1]


def test_batch_put_message_through_the_router_answers_a_repeated_id_without_an_error() -> None:
    model = Model("a")
    router = MessageRouter([model], InMemoryStateStore(), ManualClock())
    payload = base64.b64encode(json.dumps({"n": 1}).encode()).decode()
    request = {"messages": [{"messageId": "m1", "inputName": "In", "payload": payload}]}
    assert batch_put_message([router], request) == {"BatchPutMessageErrorEntries": []}
    assert batch_put_message([router], request) == {"BatchPutMessageErrorEntries": []}
    assert model.seen == [1]


def test_a_message_to_an_input_no_model_knows_is_refused_not_dropped() -> None:
    """As one engine refuses it, and BatchPutMessage answers ResourceNotFoundException: a
    feeder set to a misspelt input must fail, keeping its rows, not lose them silently."""
    model = Model("a")
    router = MessageRouter([model], InMemoryStateStore(), ManualClock())
    with pytest.raises(NotFoundError, match="'Inn'"):
        router.put_message("Inn", {"n": 1}, "m1")
    with pytest.raises(NotFoundError, match="'Inn'"), router.holding():
        router.put_message("Inn", {"n": 2})
    assert model.seen == []


def test_a_feeder_sending_to_an_input_no_model_knows_keeps_its_rows(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path)
    key = "output/pump-01/2026-01-01T00:00:00Z/results.jsonl"
    row = {"timestamp": "2026-01-01T00:00:01.000000", "prediction": 0}
    store.put(key, (json.dumps(row) + "\n").encode())
    state = InMemoryStateStore()
    model = Model("a")
    model.inputs = {"AnomalyResults": None}
    router = MessageRouter([model], state, ManualClock())
    with pytest.raises(NotFoundError):
        ResultsFeeder(store, "output/", router, state, input_name="Anomalies").poll()
    assert ResultsFeeder(store, "output/", router, state).poll() == 1
    assert model.seen == [None]


def test_an_empty_message_id_is_no_id_as_for_one_engine() -> None:
    """An engine gives a message with ``""`` for its id a fresh one; the router must not
    make every such message the same one and drop all but the first."""
    model = Model("a")
    router = MessageRouter([model], InMemoryStateStore(), ManualClock())
    router.put_message("In", {"n": 1}, "")
    router.put_message("In", {"n": 2}, "")
    assert model.seen == [1, 2]


@given(
    failures=st.lists(st.integers(0, 3), min_size=1, max_size=4),
    messages=st.integers(1, 4),
    restarts=st.lists(st.booleans(), min_size=16, max_size=16),
)
def test_retried_until_taken_every_model_gets_every_message_once_in_order(
    failures: list[int], messages: int, restarts: list[bool]
) -> None:
    """However the models fail, and whether the router restarts between tries, a sender that
    retries each message until it goes through (as the feeder does) gives every model each
    message exactly once, in the order sent."""
    state, clock = InMemoryStateStore(), ManualClock()
    models = [Model(f"m{i}", failures=n) for i, n in enumerate(failures)]
    router = MessageRouter(models, state, clock)
    tries = iter(restarts * 4)
    for n in range(messages):
        for _ in range(len(failures) * 3 + 1):
            if next(tries):
                router = MessageRouter(models, state, clock)
            try:
                router.put_message("In", {"n": n}, f"m-{n}")
                break
            except StorageError:
                clock.advance(1)
    assert all(model.seen == list(range(messages)) for model in models)
    assert list(state.items("router/partial")) == []


def test_the_five_minutes_run_from_the_last_message_sent_with_the_id() -> None:
    """AWS (developer guide, "Send messages as inputs to a detector"): "AWS IoT Events
    ignores a message if it has the same messageID as another message that was sent within
    the last five minutes". A repeat that was ignored was sent all the same: the five
    minutes run again from it."""
    clock = ManualClock()
    model = Model("a")
    router = MessageRouter([model], InMemoryStateStore(), clock)
    router.put_message("In", {"n": 1}, "m1")
    clock.advance(200)
    router.put_message("In", {"n": 2}, "m1")
    clock.advance(200)
    router.put_message("In", {"n": 3}, "m1")
    clock.advance(301)
    router.put_message("In", {"n": 4}, "m1")
    assert model.seen == [1, 4]
