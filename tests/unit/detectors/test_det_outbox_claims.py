"""Two processes retrying from one outbox (overlapping Lambda invocations): each due record is
claimed with a conditional write, so exactly one of them delivers it."""

from __future__ import annotations

from detector_models import action_request
from stale_listing import Stale

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors.engine import ActionRequest
from cloud.detectors.outbox import OUTBOX_NAMESPACE, DeliveryOutbox
from edge.clock import ManualClock

T0 = 1_767_225_600.0


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.done: list[str] = []

    def execute(self, request: ActionRequest) -> None:
        if self.fail:
            raise RuntimeError("SNS throttled")
        self.done.append(request.event_name)


def request() -> ActionRequest:
    return action_request(event_time_ms=int(T0 * 1000))


def test_a_due_record_is_delivered_by_one_of_two_retrying_processes() -> None:
    # GIVEN an alert whose first delivery failed, due again a minute later
    state, clock = InMemoryStateStore(), ManualClock(T0)
    DeliveryOutbox(Sink(fail=True), state, clock).execute(request())
    clock.advance(60)
    seen_by_both = list(state.items_versioned(OUTBOX_NAMESPACE))
    assert len(seen_by_both) == 1
    # WHEN two processes retry from the same listing, one after the other
    first, second = Sink(), Sink()
    delivered = (
        DeliveryOutbox(first, state, clock).retry_due(),
        DeliveryOutbox(second, Stale(state, OUTBOX_NAMESPACE, seen_by_both), clock).retry_due(),  # type: ignore[arg-type]
    )
    # THEN only the first delivered it, and it is gone from the outbox
    assert delivered == (1, 0)
    assert (first.done, second.done) == (["alarm raised"], [])
    assert list(state.items(OUTBOX_NAMESPACE)) == []


def test_a_claim_lapses_when_its_holder_never_finishes() -> None:
    state, clock = InMemoryStateStore(), ManualClock(T0)
    DeliveryOutbox(Sink(fail=True), state, clock).execute(request())
    clock.advance(60)
    [(key, stored)] = state.items_versioned(OUTBOX_NAMESPACE)
    state.put_if_version(
        OUTBOX_NAMESPACE, key, {**stored.value, "next_at": T0 + 180}, stored.version
    )
    assert DeliveryOutbox(Sink(), state, clock).retry_due() == 0  # claimed by someone else
    clock.advance(121)
    sink = Sink()
    assert DeliveryOutbox(sink, state, clock).retry_due() == 1
    assert sink.done == ["alarm raised"]


class Overlapping:
    """A sink that, while delivering, lets another process run its retries on the store."""

    def __init__(self, state: InMemoryStateStore, clock: ManualClock) -> None:
        self.other = DeliveryOutbox(Sink(), state, clock)
        self.done: list[str] = []
        self.retried_meanwhile = -1

    def execute(self, request: ActionRequest) -> None:
        self.retried_meanwhile = self.other.retry_due()
        self.done.append(request.event_name)


def test_a_first_delivery_in_flight_is_not_retried_by_another_process() -> None:
    # GIVEN a timer-fired alert being delivered by the invocation that fired it
    state, clock = InMemoryStateStore(), ManualClock(T0)
    sink = Overlapping(state, clock)
    # WHEN an overlapping invocation retries the outbox meanwhile
    DeliveryOutbox(sink, state, clock).execute(request())
    # THEN it leaves the record to its first attempt: the alert went out once
    assert sink.retried_meanwhile == 0
    assert (sink.done, sink.other._sink.done) == (["alarm raised"], [])  # type: ignore[attr-defined]
    assert list(state.items(OUTBOX_NAMESPACE)) == []
