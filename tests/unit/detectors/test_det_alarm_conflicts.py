"""Alarm engines sharing one store (two Lambdas on one alarm instance): conditional writes.

Each engine writes an instance only if nobody wrote it since it was read; the loser reads it
again and evaluates the message, operator action or due reminder again on the fresh state.
So of two engines racing on one instance exactly one makes the transition, and a notice is
handed over once: no duplicate notification, history entry or budget spend.

The races are forced deterministically: a store wrapper lets the other engine run its whole
step just before this engine's conditional write, which is the worst interleaving.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from detector_models import RecordingSink

from cloud.adapters.local import InMemoryStateStore, SqliteStateStore
from cloud.detectors import load_input
from cloud.detectors.alarms import CLAIM_S, AlarmEngine, NotificationLimiter, load_alarm_model
from cloud.detectors.alarms.limits import NAMESPACE as LIMITS
from cloud.detectors.trace import TraceRecorder
from cloud.ports import StateStore, Versioned
from edge.clock import ManualClock

DATA = Path(__file__).with_name("data") / "alarms"
T0 = 1_767_225_600.0
NS = "alarms/boilerHigh"
REMINDERS = [
    {"key": "plantwatch:reminderInterval", "value": "PT10M"},
    {"key": "plantwatch:reminderCap", "value": "3"},
]


class NoticeSink(RecordingSink):
    """The recording sink, read as notifications."""

    def notices(self) -> list[str]:
        """One entry per notification (its email request), e.g. ``ACTIVE#1#n0e0``."""
        return [r.event_name for r in self.requests if r.target.get("channel") == "email"]


class Interleaving:
    """A store that runs *before* once, just before the first conditional write of the
    instance: another engine's whole step lands between this engine's read and write."""

    def __init__(self, inner: StateStore) -> None:
        self._inner = inner
        self.before: Callable[[], None] | None = None

    def put_if_version(
        self, namespace: str, key: str, value: Mapping[str, Any], version: int | None
    ) -> int:
        self._interleave(namespace)
        return self._inner.put_if_version(namespace, key, value, version)

    def put(self, namespace: str, key: str, value: Mapping[str, Any]) -> None:
        self._interleave(namespace)  # a plain write races the same way (and never loses)
        self._inner.put(namespace, key, value)

    def _interleave(self, namespace: str) -> None:
        if namespace == NS and self.before is not None:
            before, self.before = self.before, None
            before()

    def get_versioned(self, namespace: str, key: str) -> Versioned | None:
        return self._inner.get_versioned(namespace, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def boiler(
    store: Any,
    clock: ManualClock,
    sink: NoticeSink,
    *,
    reminders: bool = False,
    limiter: NotificationLimiter | None = None,
    trace: TraceRecorder | None = None,
    preload: bool = True,
) -> AlarmEngine:
    body = json.loads((DATA / "boiler_high.json").read_text())
    if reminders:
        body["tags"] = REMINDERS
    return AlarmEngine(
        load_alarm_model(body),
        [load_input(DATA / "boiler_input.json")],
        store,
        clock,
        sink,
        limiter=limiter,
        observer=trace,
        preload=preload,
    )


def temp(value: float) -> dict[str, Any]:
    return {"boilerId": "b7", "temp": value}


def transitions(*traces: TraceRecorder) -> list[tuple[str, str]]:
    return [(r.detail["from"], r.detail["to"]) for t in traces for r in t.of_kind("transition")]


def history(store: StateStore) -> list[tuple[str, str, str]]:
    return [(e["action"], e["from"], e["to"]) for _k, e in store.items("alarm-history/boilerHigh")]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        return InMemoryStateStore()
    return SqliteStateStore(tmp_path / "state.db")


def test_two_engines_breach_one_instance_and_exactly_one_transition_wins(store: Any) -> None:
    # GIVEN two engines that both read b7 in NORMAL
    clock = ManualClock(T0)
    seed = NoticeSink()
    boiler(store, clock, seed).put_message("BoilerInput", temp(70))
    racing = Interleaving(store)
    sink_a, sink_b = NoticeSink(), NoticeSink()
    trace_a, trace_b = TraceRecorder(), TraceRecorder()
    a = boiler(store, clock, sink_a, trace=trace_a)
    b = boiler(racing, clock, sink_b, trace=trace_b)
    # WHEN both evaluate a breach, A writing between B's read and B's write
    racing.before = lambda: a.put_message("BoilerInput", temp(90))
    b.put_message("BoilerInput", temp(95))
    # THEN one NORMAL -> ACTIVE between them, one notification, one history entry
    assert transitions(trace_a, trace_b) == [("NORMAL", "ACTIVE")]
    assert sink_a.notices() + sink_b.notices() == ["ACTIVE#1#n0e0"]
    assert Counter(r.kind for r in sink_a.requests + sink_b.requests) == {"sns": 2}
    assert history(store) == [("STATE_CHANGE", "NORMAL", "ACTIVE")]
    # B lost, read A's write and evaluated its own message on it: still ACTIVE, its value
    assert b.describe("b7")["alarm"]["alarmState"]["stateName"] == "ACTIVE"
    b.close()
    a.close()
    stored = store.get(NS, "b7")
    assert (stored["state"], stored["pending"], stored["seq"]) == ("ACTIVE", [], 1)


def test_without_the_conditional_write_both_engines_would_notify(store: Any) -> None:
    """The race above is real: two engines from the same read each see NORMAL -> ACTIVE."""
    clock = ManualClock(T0)
    boiler(store, clock, NoticeSink()).put_message("BoilerInput", temp(70))
    sink_a, sink_b = NoticeSink(), NoticeSink()
    a, b = boiler(store, clock, sink_a), boiler(store, clock, sink_b)
    a.put_message("BoilerInput", temp(90))
    b._save = lambda alarm: store.put(NS, alarm.key, alarm.to_doc())  # type: ignore[method-assign]
    b.put_message("BoilerInput", temp(95))  # its cached copy still says NORMAL
    assert sink_a.notices() + sink_b.notices() == ["ACTIVE#1#n0e0", "ACTIVE#1#n0e0"]


def test_an_acknowledgement_racing_a_message_is_applied_and_the_message_re_evaluated(
    store: Any,
) -> None:
    # GIVEN b7 ACTIVE, read by both the detector-side engine and an operator's engine
    clock = ManualClock(T0)
    seed = boiler(store, clock, NoticeSink())
    seed.put_message("BoilerInput", temp(90))
    seed.close()  # as a Lambda does at the end of its run: the hand-over is written
    racing = Interleaving(store)
    sink_op, sink_msg = NoticeSink(), NoticeSink()
    trace_op, trace_msg = TraceRecorder(), TraceRecorder()
    operator = boiler(store, clock, sink_op, trace=trace_op)
    feeder = boiler(racing, clock, sink_msg, trace=trace_msg)
    # WHEN the operator acknowledges between the feeder's read and its write of "back in range"
    racing.before = lambda: operator.acknowledge("b7", note="on it", who="ana")
    feeder.put_message("BoilerInput", temp(60))
    # THEN the feeder's message meets ACKNOWLEDGED (-> NORMAL), never ACTIVE (-> LATCHED)
    assert transitions(trace_op, trace_msg) == [
        ("ACTIVE", "ACKNOWLEDGED"),
        ("ACKNOWLEDGED", "NORMAL"),
    ]
    assert sink_op.notices() == ["ACKNOWLEDGED#2#n0e0"]
    assert sink_msg.notices() == ["NORMAL#3#n0e0"]
    assert history(store)[1:] == [
        ("ACKNOWLEDGE", "ACTIVE", "ACKNOWLEDGED"),
        ("STATE_CHANGE", "ACKNOWLEDGED", "NORMAL"),
    ]


def test_an_operator_action_that_loses_its_race_is_judged_on_the_fresh_state(
    store: Any,
) -> None:
    clock = ManualClock(T0)
    boiler(store, clock, NoticeSink()).put_message("BoilerInput", temp(90))
    racing = Interleaving(store)
    feeder, operator = boiler(store, clock, NoticeSink()), boiler(racing, clock, NoticeSink())
    operator.describe("b7")  # ACTIVE in its cache
    # WHEN another operator resets b7 between this one's read and write
    racing.before = lambda: feeder.reset("b7", who="bo")
    # THEN the acknowledgement meets NORMAL and is refused, naming the state
    with pytest.raises(Exception, match="it is NORMAL"):
        operator.acknowledge("b7", who="ana")
    assert [a for a, _f, _t in history(store)] == ["STATE_CHANGE", "RESET"]


def test_two_overlapping_timer_runs_send_a_due_reminder_once(store: Any) -> None:
    # GIVEN b7 ACTIVE with its first reminder due, loaded by two timer runs
    clock = ManualClock(T0)
    first = boiler(store, clock, NoticeSink(), reminders=True)
    first.put_message("BoilerInput", temp(90))
    first.close()
    clock.advance(600)
    racing = Interleaving(store)
    sink_a, sink_b = NoticeSink(), NoticeSink()
    a = boiler(store, clock, sink_a, reminders=True)
    b = boiler(racing, clock, sink_b, reminders=True)
    # WHEN both tick, A completing between B's read and B's write
    ran: list[int] = []
    racing.before = lambda: ran.append(a.tick())
    ran.append(b.tick())
    # THEN one reminder between them, written once; the next is due one interval later
    assert sorted(ran) == [0, 1]
    assert sink_a.notices() + sink_b.notices() == ["REMINDER#2#n0e0"]
    assert [a for a, _f, _t in history(store)] == ["STATE_CHANGE", "REMINDER"]
    assert a.next_due() == T0 + 1200
    # B read A's write before A recorded the hand-over: B waits out A's claim on it, then
    # finds it handed over (A's run ended and wrote that), and sends nothing
    a.close()
    clock.advance(CLAIM_S)
    assert b.tick() == 0
    assert sink_b.requests == [] and len(sink_a.requests) == 1  # a reminder: no alarm action
    assert b.next_due() == T0 + 1200


def test_a_lapsed_notice_found_by_two_engines_is_handed_over_once(store: Any) -> None:
    # GIVEN a notice whose maker died after writing it (never handed over)
    clock = ManualClock(T0)
    dead = boiler(store, clock, NoticeSink())
    dead._deliver = lambda alarm, ids: None  # type: ignore[method-assign]
    dead.put_message("BoilerInput", temp(90))
    racing = Interleaving(store)
    sink_a, sink_b = NoticeSink(), NoticeSink()
    a = boiler(store, clock, sink_a)
    b = boiler(racing, clock, sink_b)
    assert sink_a.requests == sink_b.requests == []  # the claim still holds
    # WHEN the claim lapses and both find it, A claiming it between B's read and write
    clock.advance(CLAIM_S + 1)
    racing.before = a.tick
    b.tick()
    # THEN it is handed over once, by A; B found it claimed
    assert sink_a.notices() == ["ACTIVE#1#n0e0"] and sink_b.requests == []
    assert history(store) == [("STATE_CHANGE", "NORMAL", "ACTIVE")]
    a.close()
    assert store.get(NS, "b7")["pending"] == []


def test_a_flush_that_loses_keeps_the_winners_state_and_drops_what_it_handed_over(
    store: Any,
) -> None:
    clock = ManualClock(T0)
    a = boiler(store, clock, NoticeSink(), preload=False)
    a.put_message("BoilerInput", temp(90))  # handed over; its drop is written lazily
    clock.advance(5)
    b = boiler(store, clock, NoticeSink(), preload=False)
    b.acknowledge("b7", who="ana")  # a write A has not seen
    clock.advance(5)
    a.put_message("BoilerInput", temp(91))  # A: only the last value changed (ACTIVE, breached)
    a.close()  # conflicts, reads B's write, keeps its state, takes A's newer value
    stored = store.get(NS, "b7")
    assert stored["state"] == "ACKNOWLEDGED"
    assert stored["value"] == 91
    assert [n["kind"] for n in stored["pending"]] == ["ACKNOWLEDGED"]  # B's, not yet dropped
    b.close()
    assert store.get(NS, "b7")["pending"] == []


def test_two_limiters_spending_one_budget_both_count() -> None:
    store = InMemoryStateStore()
    a, b = NotificationLimiter(store, 3, 3600), NotificationLimiter(store, 3, 3600)
    assert a.allow("b7", T0) and b.allow("b7", T0 + 1)  # B read after A: no conflict
    assert a.allow("b7", T0 + 2)  # A's cached copy is stale: it re-reads and counts B's
    assert not b.allow("b7", T0 + 3)  # the budget of 3 is spent
    doc = store.get(LIMITS, "b7")
    assert doc is not None and doc["sent"] == [T0, T0 + 1, T0 + 2] and doc["suppressed"] == 1
