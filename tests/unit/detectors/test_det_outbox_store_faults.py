"""The action outbox when its own store fails: an action is never lost for want of a record,
and one record it cannot read never holds up the others.

The outbox's promise (docs/detectors.md, "Retried deliveries"): an alert or a command is
stored, then delivered, and retried until it goes out or is kept as a dead letter. A store
that refuses the record (throttled, a full disk) must not turn that into "never sent"; a
stored record that no longer reads as an action (written by an older version, damaged)
must not stop every other due record from going out at each retry.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import pytest
from detector_models import action_request

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors.engine import ActionRequest
from cloud.detectors.outbox import DEAD_LETTER_NAMESPACE, OUTBOX_NAMESPACE, DeliveryOutbox
from edge.clock import ManualClock
from edge.errors import PlantwatchError, StorageError

T0 = 1_767_225_600.0


class Sink:
    """Delivers (keeps) every request, or raises *error* while it is set."""

    def __init__(self) -> None:
        self.delivered: list[ActionRequest] = []
        self.error: Exception | None = None

    def execute(self, request: ActionRequest) -> None:
        if self.error is not None:
            raise self.error
        self.delivered.append(request)


class OutboxWritesFail(InMemoryStateStore):
    """A store that refuses writes to the outbox while ``failing`` is set."""

    failing = False

    def put(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        if self.failing and namespace == OUTBOX_NAMESPACE:
            raise StorageError("state table throttled")
        super().put(namespace, key, value)


def test_an_action_the_store_cannot_record_is_still_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, sink = OutboxWritesFail(), Sink()
    outbox = DeliveryOutbox(sink, state, ManualClock(T0))
    state.failing = True
    with caplog.at_level(logging.WARNING, logger="cloud.detectors.outbox"):
        outbox.execute(action_request())
    assert [r.event_name for r in sink.delivered] == ["alarm raised"]
    assert outbox.pending() == [] and outbox.stats["delivered"] == 1
    assert "state table throttled" in caplog.text


def test_an_unrecorded_action_that_also_fails_to_go_out_is_logged_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nowhere to keep it: the error says so and carries the request, for an operator."""
    state, sink = OutboxWritesFail(), Sink()
    outbox = DeliveryOutbox(sink, state, ManualClock(T0))
    state.failing = True
    sink.error = PlantwatchError("provider unavailable")
    with (
        caplog.at_level(logging.ERROR, logger="cloud.detectors.outbox"),
        pytest.raises(PlantwatchError, match="provider unavailable"),
    ):
        outbox.execute(action_request())
    [line] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    text = line.getMessage()
    assert "not recorded" in text and "provider unavailable" in text
    assert "arn:aws:sns:us-east-1:123456789012:alerts" in text and "pump-01" in text


def test_a_record_that_is_not_an_action_is_a_dead_letter_and_the_others_go_out() -> None:
    state, sink = InMemoryStateStore(), Sink()
    clock = ManualClock(T0)
    outbox = DeliveryOutbox(sink, state, clock)
    good = dataclasses.asdict(action_request())
    # sorted first, as the store lists keys: it must not stop the one after it
    state.put(OUTBOX_NAMESPACE, "000-old", {"request": {"kind": "sns"}, "next_at": 0.0})
    state.put(OUTBOX_NAMESPACE, "001-good", {"request": good, "attempts": 1, "next_at": 0.0})
    assert outbox.retry_due() == 1
    assert [r.event_name for r in sink.delivered] == ["alarm raised"]
    assert outbox.pending() == []
    [(key, dead)] = outbox.dead_letters()
    assert key == "000-old"
    assert "not an action" in dead["dead_reason"] and dead["request"] == {"kind": "sns"}
    assert state.get(DEAD_LETTER_NAMESPACE, "000-old") is not None
    clock.advance(1000)
    assert outbox.retry_due() == 0 and len(sink.delivered) == 1


def test_a_retry_whose_bookkeeping_fails_does_not_stop_the_other_due_records() -> None:
    """One record whose failure cannot be written (the store throttles that write) stays
    claimed for a later retry; the records after it are still delivered."""
    state, sink = OutboxWritesFail(), Sink()
    clock = ManualClock(T0)
    outbox = DeliveryOutbox(sink, state, clock)
    sink.error = PlantwatchError("provider unavailable")
    outbox.execute(action_request(event_name="first"))
    clock.advance(1)
    outbox.execute(action_request(event_name="second"))
    assert len(outbox.pending()) == 2

    class FirstFails(Sink):
        def execute(self, request: ActionRequest) -> None:
            if request.event_name == "first":
                raise PlantwatchError("provider unavailable")
            super().execute(request)

    second_sink = FirstFails()
    retrying = DeliveryOutbox(second_sink, state, clock)
    clock.advance(600)
    state.failing = True  # the first one's failure cannot be written back
    with pytest.raises(StorageError, match="throttled"):
        retrying.retry_due()
    assert [r.event_name for r in second_sink.delivered] == ["second"]
    state.failing = False
    assert [v["request"]["event_name"] for _k, v in retrying.pending()] == ["first"]


def test_a_record_with_a_damaged_due_time_is_due_and_holds_up_no_other() -> None:
    state, sink = InMemoryStateStore(), Sink()
    outbox = DeliveryOutbox(sink, state, ManualClock(T0))
    first = dataclasses.asdict(action_request(event_name="first"))
    second = dataclasses.asdict(action_request(event_name="second"))
    state.put(OUTBOX_NAMESPACE, "000", {"request": first, "attempts": 1, "next_at": "soon"})
    state.put(OUTBOX_NAMESPACE, "001", {"request": second, "attempts": 1, "next_at": 0.0})
    assert outbox.retry_due() == 2
    assert [r.event_name for r in sink.delivered] == ["first", "second"]
    assert outbox.pending() == []
