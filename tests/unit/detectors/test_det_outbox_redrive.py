"""Redriving dead letters: an operator who fixed the cause puts a dead action back in the
outbox, due now with its attempts reset; the next ``retry_due`` sends it, once, even when two
redrives (or a redrive and a running retry) race on the same store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from detector_models import EventSink, action_request
from stale_listing import Stale

from cloud.adapters.local import InMemoryStateStore, SqliteStateStore
from cloud.detectors.engine import ActionRequest
from cloud.detectors.outbox import (
    CLAIM_S,
    DEAD_LETTER_NAMESPACE,
    OUTBOX_NAMESPACE,
    DeliveryOutbox,
    UnknownDeadLetterError,
    redrive,
)
from cloud.ports import StateStore
from edge.clock import ManualClock
from edge.errors import RefusedError, UserError

T0 = 1_767_225_600.0


GONE = RefusedError("sns arn:aws:sns:us-east-1:123456789012:alerts: NotFound", reason="NotFound")


def request(event: str = "alarm raised") -> ActionRequest:
    return action_request(event_name=event, event_time_ms=int(T0 * 1000))


Stores = Callable[[], StateStore]


@pytest.fixture(params=["memory", "sqlite"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Opens the one store; for SQLite each call is another connection to one file, as two
    processes would have."""
    opened: list[Any] = []
    memory = InMemoryStateStore()

    def make() -> StateStore:
        if request.param == "memory":
            return memory
        store = SqliteStateStore(tmp_path / "state.db")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def dead_letter(state: StateStore, clock: ManualClock, event: str = "alarm raised") -> str:
    outbox = DeliveryOutbox(EventSink(GONE), state, clock)
    outbox.execute(request(event))
    [(key, record)] = [
        (k, r) for k, r in outbox.dead_letters() if r["request"]["event_name"] == event
    ]
    assert record["dead_reason"].startswith("refused")
    return key


def test_a_redriven_dead_letter_is_due_now_and_sent_once(open_store: Stores) -> None:
    # GIVEN an alert refused because its topic was gone
    state, clock = open_store(), ManualClock(T0)
    key = dead_letter(state, clock)
    clock.advance(3600)  # the operator restores the topic an hour later
    # WHEN they redrive it
    [done] = redrive(state, clock, [key])
    # THEN it is back in the outbox, due now, attempts reset, counted as redriven once
    assert (done.key, done.status, done.redrives) == (key, "redriven", 1)
    assert list(state.items(DEAD_LETTER_NAMESPACE)) == []
    [(pending_key, record)] = state.items(OUTBOX_NAMESPACE)
    assert pending_key == key
    assert (record["attempts"], record["redriven_at"], record["redrives"]) == (0, T0 + 3600, 1)
    assert "dead_reason" not in record
    # AND the next retry sends it, once
    sink = EventSink()
    outbox = DeliveryOutbox(sink, state, clock)
    assert outbox.retry_due() == 1
    assert outbox.retry_due() == 0
    assert sink.done == ["alarm raised"]
    assert list(state.items(OUTBOX_NAMESPACE)) == []


def test_a_redriven_action_that_fails_again_is_dead_again_with_its_redrive_count() -> None:
    state, clock = InMemoryStateStore(), ManualClock(T0)
    key = dead_letter(state, clock)
    outbox = DeliveryOutbox(EventSink(GONE), state, clock)
    assert [r.redrives for r in outbox.redrive([key])] == [1]
    outbox.retry_due()
    [(again, record)] = state.items(DEAD_LETTER_NAMESPACE)
    assert (again, record["attempts"], record["redrives"]) == (key, 1, 1)
    assert [r.redrives for r in outbox.redrive()] == [2]


def test_all_dead_letters_are_redriven_when_no_key_is_given() -> None:
    state, clock = InMemoryStateStore(), ManualClock(T0)
    keys = sorted(dead_letter(state, clock, event) for event in ("a", "b", "c"))
    assert [(r.key, r.status) for r in redrive(state, clock)] == [(k, "redriven") for k in keys]
    assert [k for k, _ in state.items(OUTBOX_NAMESPACE)] == keys


def test_a_dry_run_changes_nothing() -> None:
    state, clock = InMemoryStateStore(), ManualClock(T0)
    key = dead_letter(state, clock)
    before = list(state.items_versioned(DEAD_LETTER_NAMESPACE))
    assert [(r.key, r.status, r.redrives) for r in redrive(state, clock, dry_run=True)] == [
        (key, "would redrive", 1)
    ]
    assert list(state.items_versioned(DEAD_LETTER_NAMESPACE)) == before
    assert list(state.items(OUTBOX_NAMESPACE)) == []


def test_an_unknown_key_is_named_and_nothing_is_redriven() -> None:
    state, clock = InMemoryStateStore(), ManualClock(T0)
    key = dead_letter(state, clock)
    with pytest.raises(UnknownDeadLetterError) as raised:
        redrive(state, clock, [key, "no-such-key"])
    assert isinstance(raised.value, UserError)
    assert raised.value.keys == ("no-such-key",)
    assert "'no-such-key'" in str(raised.value)
    assert [k for k, _ in state.items(DEAD_LETTER_NAMESPACE)] == [key]
    assert list(state.items(OUTBOX_NAMESPACE)) == []


def test_two_racing_redrives_put_it_back_once(open_store: Stores) -> None:
    # GIVEN a dead letter two operators (or two shells) redrive from the same listing
    state, clock = open_store(), ManualClock(T0)
    key = dead_letter(state, clock)
    seen_by_both = list(state.items_versioned(DEAD_LETTER_NAMESPACE))
    # WHEN one redrives it, the other then redrives it from that listing
    first = redrive(state, clock, [key])
    second = redrive(Stale(open_store(), DEAD_LETTER_NAMESPACE, seen_by_both), clock, [key])  # type: ignore[arg-type]
    # THEN only the first moved it; the second says another redrive took it
    assert [r.status for r in first] == ["redriven"]
    assert [r.status for r in second] == ["taken"]
    assert [k for k, _ in state.items(OUTBOX_NAMESPACE)] == [key]
    # AND it goes out once
    sink = EventSink()
    DeliveryOutbox(sink, state, clock).retry_due()
    DeliveryOutbox(sink, open_store(), clock).retry_due()
    assert sink.done == ["alarm raised"]


class Interleaved:
    """The store; when the redrive deletes the dead letter, first *meanwhile* runs, as
    another process would between the redrive's writes."""

    def __init__(self, inner: StateStore, meanwhile: Callable[[], Any]) -> None:
        self._inner = inner
        self._meanwhile = meanwhile
        self.result: Any = None

    def delete(self, namespace: str, key: str) -> None:
        if namespace == DEAD_LETTER_NAMESPACE and self.result is None:
            self.result = self._meanwhile()
        self._inner.delete(namespace, key)

    def delete_if_version(self, namespace: str, key: str, version: int) -> None:
        if namespace == DEAD_LETTER_NAMESPACE and self.result is None:
            self.result = self._meanwhile()
        self._inner.delete_if_version(namespace, key, version)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_redrive_under_way_is_left_alone_by_another_redrive_and_by_retries() -> None:
    state, clock = InMemoryStateStore(), ManualClock(T0)
    key = dead_letter(state, clock)
    sink = EventSink()
    others: list[Any] = []

    def meanwhile() -> tuple[Any, ...]:
        # the dead letter is claimed and its outbox copy not yet released
        others.append(redrive(state, clock, [key]))
        return DeliveryOutbox(sink, state, clock).retry_due()

    store = Interleaved(state, meanwhile)
    [done] = redrive(store, clock, [key])  # type: ignore[arg-type]
    assert done.status == "redriven"
    assert [[r.status for r in o] for o in others] == [["taken"]]
    assert store.result == 0 and sink.done == []
    assert DeliveryOutbox(sink, state, clock).retry_due() == 1
    assert sink.done == ["alarm raised"]


class StopsAtDelete:
    """The store of a redrive that stops (killed) right before removing the dead letter."""

    def __init__(self, inner: StateStore) -> None:
        self._inner = inner

    def delete(self, namespace: str, key: str) -> None:
        raise KeyboardInterrupt

    def delete_if_version(self, namespace: str, key: str, version: int) -> None:
        raise KeyboardInterrupt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_redrive_that_stopped_half_way_is_finished_by_the_next_without_a_second_copy() -> None:
    state, clock = InMemoryStateStore(), ManualClock(T0)
    key = dead_letter(state, clock)
    with pytest.raises(KeyboardInterrupt):
        redrive(StopsAtDelete(state), clock, [key])  # type: ignore[arg-type]
    # its claim holds the dead letter for a while
    assert [r.status for r in redrive(state, clock, [key])] == ["taken"]
    clock.advance(CLAIM_S + 1)
    [done] = redrive(state, clock, [key])
    assert done.status == "already pending"
    assert list(state.items(DEAD_LETTER_NAMESPACE)) == []
    sink = EventSink()
    assert DeliveryOutbox(sink, state, clock).retry_due() == 1
    assert sink.done == ["alarm raised"]


def test_a_letter_dead_again_while_a_redrive_finishes_a_stopped_one_is_kept() -> None:
    # GIVEN a redrive that stopped before removing the dead letter: its outbox copy is
    # pending, and due once its claim has passed
    state, clock = InMemoryStateStore(), ManualClock(T0)
    key = dead_letter(state, clock)
    with pytest.raises(KeyboardInterrupt):
        redrive(StopsAtDelete(state), clock, [key])  # type: ignore[arg-type]
    clock.advance(CLAIM_S + 1)

    def retry_fails_again() -> int:
        # a running retry sends the pending copy, which fails and is dead again
        return DeliveryOutbox(EventSink(GONE), state, clock).retry_due()

    # WHEN the next redrive finds the copy pending and, before it removes the old dead
    # letter, that retry dead-letters the copy again
    store = Interleaved(state, retry_fails_again)
    [done] = redrive(store, clock, [key])  # type: ignore[arg-type]
    # THEN the new dead letter is kept (not deleted as the old one) and nothing is pending
    assert store.result == 0
    assert done.status == "taken"
    [(again, record)] = state.items(DEAD_LETTER_NAMESPACE)
    assert (again, record["attempts"], record["redrives"]) == (key, 1, 1)
    assert list(state.items(OUTBOX_NAMESPACE)) == []
    # AND it can be redriven once the cause is fixed
    assert [r.status for r in redrive(state, clock, [key])] == ["redriven"]


def test_a_redriven_letter_is_due_for_a_retrying_clock_behind_the_operators() -> None:
    # the timers function's clock is its event's time; the operator's machine may be ahead
    state = InMemoryStateStore()
    key = dead_letter(state, ManualClock(T0))
    redrive(state, ManualClock(T0 + 300), [key])
    sink = EventSink()
    assert DeliveryOutbox(sink, state, ManualClock(T0 + 60)).retry_due() == 1
    assert sink.done == ["alarm raised"]
