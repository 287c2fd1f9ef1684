"""Alarm engine against the spec's transition table, over random inputs and operator actions.

A small reference implementation of spec §7 runs beside the engine: after every step both
must be in the same state, an operator action must be refused exactly when the table has no
row for it, acknowledged alarms never get a reminder, and reminders stop at the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryNotifier, InMemoryStateStore
from cloud.detectors import ActionRequest, load_input
from cloud.detectors import expr as ex
from cloud.detectors.actions import LocalActionSink
from cloud.detectors.alarms import AlarmEngine, AlarmStateError, load_alarm_model
from cloud.detectors.alarms.engine import OPERATIONS, STATES, compare
from cloud.detectors.alarms.model import OPERATORS
from edge.clock import ManualClock

INTERVAL = 60.0
THRESHOLD = 50
INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
}


class Notifications:
    """Writes notifications through the local sink (its texts and attributes)."""

    def __init__(self, notifier: InMemoryNotifier) -> None:
        self.local = LocalActionSink(notifier, None)

    def execute(self, request: ActionRequest) -> None:
        self.local.execute(request)


@dataclass
class Reference:
    """Spec §7's table, written out plainly."""

    ack_flow: bool
    cap: int
    state: str | None = None
    snooze_until: float | None = None
    next_reminder: float | None = None
    reminders: int = 0

    def enter(self, state: str, now: float) -> None:
        self.state = state
        self.reminders = 0
        self.next_reminder = (
            now + INTERVAL if state == "ACTIVE" and self.ack_flow and self.cap else None
        )

    def value(self, v: int, now: float, disabled_first: bool) -> None:
        if self.state is None:
            self.state = "DISABLED" if disabled_first else "NORMAL"
        breached = v > THRESHOLD
        if self.state == "NORMAL" and breached:
            self.enter("ACTIVE", now)
        elif self.state == "ACTIVE" and not breached:
            self.enter("LATCHED" if self.ack_flow else "NORMAL", now)
        elif self.state == "ACKNOWLEDGED" and not breached:
            self.enter("NORMAL", now)
        elif self.state == "LATCHED" and breached:
            self.enter("ACTIVE", now)

    def operate(self, action: str, now: float, seconds: float = 0.0) -> bool:
        allowed = {
            "ACKNOWLEDGE": {"ACTIVE": "ACKNOWLEDGED", "LATCHED": "NORMAL"},
            "SNOOZE": dict.fromkeys(
                ("NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED"), "SNOOZE_DISABLED"
            ),
            "RESET": dict.fromkeys(
                ("NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED", "SNOOZE_DISABLED"), "NORMAL"
            ),
            "ENABLE": {"DISABLED": "NORMAL"},
            "DISABLE": dict.fromkeys(
                ("NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED", "SNOOZE_DISABLED"), "DISABLED"
            ),
        }[action]
        if self.state not in allowed or (action == "ACKNOWLEDGE" and not self.ack_flow):
            return False
        self.enter(allowed[self.state], now)
        self.snooze_until = now + seconds if action == "SNOOZE" else None
        return True

    def tick(self, now: float) -> int:
        if (
            self.state == "SNOOZE_DISABLED"
            and self.snooze_until is not None
            and self.snooze_until <= now
        ):
            self.snooze_until = None
            self.enter("NORMAL", now)
        if self.next_reminder is not None and self.next_reminder <= now:
            self.next_reminder = None
            if self.state == "ACTIVE" and self.reminders < self.cap:
                self.reminders += 1
                if self.reminders < self.cap:
                    self.next_reminder = now + INTERVAL
                return 1
        return 0


def model(ack_flow: bool, disabled: bool, cap: int) -> Any:
    return load_alarm_model(
        {
            "alarmModelName": "prop",
            "roleArn": "arn:aws:iam::1:role/r",
            "key": "id",
            "alarmRule": {
                "simpleRule": {
                    "inputProperty": "$input.In.v",
                    "comparisonOperator": "GREATER",
                    "threshold": str(THRESHOLD),
                }
            },
            "alarmNotification": {
                "notificationActions": [
                    {
                        "action": {
                            "lambdaAction": {"functionArn": "arn:aws:lambda:us-east-1:1:function:n"}
                        },
                        "smsConfigurations": [
                            {"recipients": [{"ssoIdentity": {"identityStoreId": "d-1"}}]}
                        ],
                    }
                ]
            },
            "alarmCapabilities": {
                "initializationConfiguration": {"disabledOnInitialization": disabled},
                "acknowledgeFlow": {"enabled": ack_flow},
            },
            "tags": [
                {"key": "plantwatch:reminderInterval", "value": "PT1M"},
                {"key": "plantwatch:reminderCap", "value": str(cap)},
            ],
        }
    )


step = st.one_of(
    st.tuples(st.just("value"), st.integers(0, 100)),
    st.tuples(st.sampled_from(["ACKNOWLEDGE", "RESET", "ENABLE", "DISABLE"]), st.just(0)),
    st.tuples(st.just("SNOOZE"), st.sampled_from([60, 150, 400])),
    st.tuples(st.just("advance"), st.sampled_from([10, 45, 60, 130, 500])),
)


@settings(max_examples=200)
@example(  # acknowledged before its first reminder is due: never reminded
    ack_flow=True,
    disabled=False,
    cap=2,
    steps=[("value", 90), ("advance", 45), ("ACKNOWLEDGE", 0), ("advance", 60), ("advance", 60)],
)
@example(  # never acknowledged: reminded at each interval, then no more after the cap
    ack_flow=True,
    disabled=False,
    cap=2,
    steps=[("value", 90)] + [("advance", 60)] * 5,
)
@example(  # snoozed, then the snooze runs out while the value is still high
    ack_flow=True,
    disabled=True,
    cap=1,
    steps=[
        ("value", 90),
        ("ENABLE", 0),
        ("value", 90),
        ("SNOOZE", 150),
        ("value", 99),
        ("advance", 130),
        ("advance", 45),
        ("value", 99),
        ("advance", 60),
    ],
)
@given(
    ack_flow=st.booleans(),
    disabled=st.booleans(),
    cap=st.integers(0, 3),
    steps=st.lists(step, min_size=1, max_size=40),
)
def test_engine_follows_the_spec_table(
    ack_flow: bool, disabled: bool, cap: int, steps: list[tuple[str, int]]
) -> None:
    clock = ManualClock()
    notifier = InMemoryNotifier()
    engine = AlarmEngine(
        model(ack_flow, disabled, cap),
        [load_input(INPUT)],
        InMemoryStateStore(),
        clock,
        Notifications(notifier),
    )
    ref = Reference(ack_flow, cap)
    acked_since_active = False
    for kind, amount in steps:
        sent_before = len(notifier.sent)
        state_before = ref.state
        if kind == "value":
            engine.put_message("In", {"id": "a", "v": amount})
            ref.value(amount, clock.now(), disabled)
        elif kind == "advance":
            clock.advance(amount)
            assert engine.tick() >= ref.tick(clock.now())
        elif ref.state is None:
            continue  # no instance yet: nothing to act on
        else:
            expected = ref.operate(kind, clock.now(), amount)
            try:
                if kind == "SNOOZE":
                    engine.snooze("a", amount)
                else:
                    getattr(engine, kind.lower())("a")
                done = True
            except AlarmStateError as exc:
                done = False
                assert exc.state == state_before
            assert done == expected, (kind, state_before)
            assert done == (
                state_before in OPERATIONS[kind] and (kind != "ACKNOWLEDGE" or ack_flow)
            )
        if ref.state is None:
            continue
        assert engine.state_of("a") == ref.state, (kind, amount, state_before)
        assert ref.state in STATES
        if ref.state == "ACKNOWLEDGED" or state_before == "ACKNOWLEDGED":
            acked_since_active = True
        if ref.state == "ACTIVE" and state_before != "ACTIVE":
            acked_since_active = False
        new = notifier.sent[sent_before:]
        reminders = [n for n in new if n.attributes["kind"] == "ALARM_REMINDER"]
        for reminder in reminders:
            assert reminder.attributes["state"] == "ACTIVE"
            assert not acked_since_active, "an acknowledged alarm was reminded"
        if not ack_flow:
            assert new == []  # acknowledge flow off: no notifications at all
        assert ref.reminders <= cap
        described = engine.describe("a")["alarm"]["alarmState"]["stateName"]
        assert described == ref.state
    total = [n for n in notifier.sent if n.attributes["kind"] == "ALARM_REMINDER"]
    episodes = sum(1 for n in notifier.sent if n.attributes["kind"] == "ALARM_ACTIVE")
    assert len(total) <= cap * episodes  # reminders stop at the cap in every ACTIVE episode


RULE_VALUES = st.one_of(
    st.integers(-5, 5),
    st.floats(-5, 5),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    st.sampled_from(["", "a", "b", "OPEN", "5"]),
    st.booleans(),
)


@given(st.sampled_from(sorted(OPERATORS.values())), RULE_VALUES, RULE_VALUES)
@settings(max_examples=600, deadline=None)
def test_the_compiled_rule_compares_as_the_expression_language(op: str, a: Any, b: Any) -> None:
    """The engine's rule check is ``expr``'s ``a <op> b is true``, without building nodes."""
    expected = ex.evaluate(ex.Binary(op, ex.Literal(a), ex.Literal(b)), None) is True  # type: ignore[arg-type]
    assert compare(op)(a, b) is expected
