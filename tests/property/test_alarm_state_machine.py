"""One alarm model driven through the data-plane API by random sequences (spec §7).

A ``RuleBasedStateMachine`` sends messages that breach the rule or not (and ones with the
attribute missing, null or of the wrong type), BatchAcknowledge/Snooze/Disable/Enable/
ResetAlarm requests (with unknown keys, duplicate request ids and snooze durations at and
beyond the limits), and lets time pass so snoozes run out. Beside the engine runs a table of
the states and transitions AWS documents; after every step the alarm's DescribeAlarm document
and the requests sent must match it.

What the table follows, by AWS page:

- States and what each means: iotevents-data API reference, AlarmState (``stateName``:
  DISABLED "isn't ready to evaluate data"; NORMAL "ready to evaluate data"; ACTIVE "invoked";
  ACKNOWLEDGED "invoked and you acknowledged"; SNOOZE_DISABLED "disabled for a specified
  period of time. After the snooze time, the alarm automatically changes to the NORMAL
  state"; LATCHED "invoked ... data ... within the specified range. To change the alarm to
  the NORMAL state, you must acknowledge the alarm").
  https://docs.aws.amazon.com/iotevents-data/latest/apireference/API_AlarmState.html
- The acknowledge flow: AcknowledgeFlow ("If TRUE, you receive a notification when the alarm
  state changes. You must choose to acknowledge the notification before the alarm state can
  return to NORMAL. If FALSE, you won't receive notifications. The alarm automatically
  changes to the NORMAL state when the input property value returns to the specified
  range"). https://docs.aws.amazon.com/iotevents/latest/apireference/API_AcknowledgeFlow.html
- Acknowledging needs the flow: SiteWise user guide, Respond to alarms ("You must enable the
  acknowledge flow on the alarm so that you can acknowledge the alarm").
  https://docs.aws.amazon.com/iot-sitewise/latest/userguide/respond-to-alarms.html
- What a reset clears: SiteWise user guide, Respond to alarms ("Reset an alarm to clear its
  state and latest value": ``ruleEvaluation`` is gone until the next comparable message).
- First state of an instance: InitializationConfiguration (``disabledOnInitialization``).
  https://docs.aws.amazon.com/iotevents/latest/apireference/API_InitializationConfiguration.html
- Operator actions and where they lead: CustomerAction (``actionName``: SNOOZE ->
  SNOOZE_DISABLED, ENABLE -> NORMAL, DISABLE -> DISABLED, ACKNOWLEDGE -> ACKNOWLEDGED,
  RESET -> NORMAL), and BatchAcknowledgeAlarm & co. (up to 10 requests, "Each ID must be
  unique within each batch", ``snoozeDuration`` an Integer, answers ``errorEntries`` with
  ResourceNotFoundException / InvalidRequestException ...).
  https://docs.aws.amazon.com/iotevents/latest/apireference/API_iotevents-data_CustomerAction.html
  https://docs.aws.amazon.com/iotevents-data/latest/apireference/API_BatchAcknowledgeAlarm.html
  https://docs.aws.amazon.com/iotevents-data/latest/apireference/API_SnoozeAlarmActionRequest.html
  https://docs.aws.amazon.com/iotevents-data/latest/apireference/API_BatchAlarmActionErrorEntry.html
- Snooze expiry: SystemEvent / StateChangeConfiguration (``eventType`` STATE_CHANGE,
  ``triggerType`` SNOOZE_TIMEOUT: "the snooze duration ends and the alarm automatically
  changes to the NORMAL state").
  https://docs.aws.amazon.com/iotevents/latest/apireference/API_iotevents-data_StateChangeConfiguration.html

Where AWS is silent the table follows spec §7's Decisions (LATCHED + breached -> ACTIVE; an
action that does not fit the state is logged and ignored, no error entry) and plantwatch's
kept behaviour (a message without a comparable value leaves the state; the last
``customerAction`` stays until the next one; ``systemEvent`` stays until the rule moves the
alarm; a RESET of a NORMAL alarm re-enters NORMAL and notifies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from detector_models import RecordingSink
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import expr as ex
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from cloud.detectors.alarms.operations import batch_alarm_action
from edge.clock import ManualClock
from edge.errors import DetectorModelError

THRESHOLD = 50
KEY = "k1"
INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
}
INT_MAX = 2**31 - 1
"""``snoozeDuration`` is an Integer in the API (a 32-bit signed number)."""


def model_json(ack_flow: bool, disabled: bool) -> dict[str, Any]:
    return {
        "alarmModelName": "sm",
        "roleArn": "arn:aws:iam::1:role/r",
        "key": "id",
        "severity": 2,
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
                    "emailConfigurations": [
                        {
                            "from": "ops@example.com",
                            "recipients": {
                                "to": [{"ssoIdentity": {"identityStoreId": "d-1", "userId": "u"}}]
                            },
                        }
                    ],
                    "smsConfigurations": [
                        {"recipients": [{"ssoIdentity": {"identityStoreId": "d-1"}}]}
                    ],
                }
            ]
        },
        "alarmEventActions": {
            "alarmActions": [{"sns": {"targetArn": "arn:aws:sns:us-east-1:1:a"}}]
        },
        "alarmCapabilities": {
            "initializationConfiguration": {"disabledOnInitialization": disabled},
            "acknowledgeFlow": {"enabled": ack_flow},
        },
    }


TARGETS = {
    "ACKNOWLEDGE": {"ACTIVE": "ACKNOWLEDGED", "LATCHED": "NORMAL"},
    "SNOOZE": dict.fromkeys(("NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED"), "SNOOZE_DISABLED"),
    "RESET": dict.fromkeys(
        ("NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED", "SNOOZE_DISABLED"), "NORMAL"
    ),
    "ENABLE": {"DISABLED": "NORMAL"},
    "DISABLE": dict.fromkeys(
        ("NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED", "SNOOZE_DISABLED"), "DISABLED"
    ),
}
"""Operator action -> {state it applies in: state it leads to} (CustomerAction, spec §7)."""
VERB = {
    "ACKNOWLEDGE": "acknowledge",
    "SNOOZE": "snooze",
    "RESET": "reset",
    "ENABLE": "enable",
    "DISABLE": "disable",
}

# a message's value of the rule's attribute: (payload fields, comparable value or None)
MISSING = object()
VALUES = st.one_of(
    st.integers(0, 100),
    st.floats(0, 100, allow_nan=False),
    st.just(MISSING),
    st.none(),
    st.sampled_from(["hot", "", "99", True, False, [60], {"x": 60}]),
)


@dataclass
class Table:
    """The states and transitions the table at the top of this file lists."""

    ack_flow: bool
    disabled: bool
    state: str | None = None
    value: Any = None
    snooze_until: float | None = None
    customer_action: dict[str, Any] | None = None
    system_event: dict[str, Any] | None = None
    entered: list[str] = field(default_factory=list)
    """States entered so far (each entry owes its actions and, ack flow on, notifications)."""

    def enter(self, state: str) -> None:
        self.state = state
        self.entered.append(state)

    def message(self, value: Any) -> None:
        if self.state is None:
            self.state = "DISABLED" if self.disabled else "NORMAL"
        if value is MISSING or value is None or isinstance(value, (list, dict)):
            return  # nothing to compare: state kept
        self.value = value
        if self.state in ("DISABLED", "SNOOZE_DISABLED"):
            return  # data is ignored
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        breached = numeric and value > THRESHOLD
        target = self.state
        if self.state == "NORMAL" and breached:
            target = "ACTIVE"
        elif self.state == "ACTIVE" and not breached:
            target = "LATCHED" if self.ack_flow else "NORMAL"
        elif self.state == "ACKNOWLEDGED" and not breached:
            target = "NORMAL"
        elif self.state == "LATCHED" and breached:
            target = "ACTIVE"
        if target != self.state:  # the rule brought this state: no action, no system event
            self.system_event = self.customer_action = None
            self.enter(target)

    def operate(self, action: str, now: float, note: str, seconds: int | None) -> bool:
        if self.state not in TARGETS[action]:
            return False
        if action == "ACKNOWLEDGE" and not self.ack_flow:
            return False  # "You must enable the acknowledge flow ... to acknowledge"
        config: dict[str, Any] = {"note": note} if note else {}  # left out when none given
        if seconds is not None:
            config["snoozeDuration"] = seconds
        self.customer_action = {
            "actionName": action,
            f"{action.lower()}ActionConfiguration": config,
        }
        self.system_event = None
        self.snooze_until = now + seconds if action == "SNOOZE" and seconds else None
        if action == "RESET":
            self.value = None  # "Reset an alarm to clear its state and latest value"
        self.enter(TARGETS[action][self.state])
        return True

    def advance(self, now: float) -> None:
        if (
            self.state == "SNOOZE_DISABLED"
            and self.snooze_until is not None
            and self.snooze_until <= now
        ):
            self.snooze_until = None
            self.customer_action = None
            self.system_event = {
                "eventType": "STATE_CHANGE",
                "stateChangeConfiguration": {"triggerType": "SNOOZE_TIMEOUT"},
            }
            self.enter("NORMAL")


class AlarmMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(1_000_000.0)
        self.kept = RecordingSink()
        self.engine: AlarmEngine | None = None
        self.table: Table | None = None
        self.ids = 0

    @initialize(ack_flow=st.booleans(), disabled=st.booleans())
    def build(self, ack_flow: bool, disabled: bool) -> None:
        self.engine = AlarmEngine(
            load_alarm_model(model_json(ack_flow, disabled)),
            [load_input(INPUT)],
            InMemoryStateStore(),
            self.clock,
            self.kept,
        )
        self.table = Table(ack_flow, disabled)

    @property
    def eng(self) -> AlarmEngine:
        assert self.engine is not None
        return self.engine

    @property
    def ref(self) -> Table:
        assert self.table is not None
        return self.table

    def request_id(self) -> str:
        self.ids += 1
        return f"r{self.ids}"

    # ---------------------------------------------------------------- steps

    @rule(value=VALUES)
    def message(self, value: Any) -> None:
        payload: dict[str, Any] = {"id": KEY}
        if value is not MISSING:
            payload["v"] = value
        self.eng.put_message("In", payload)
        self.ref.message(value)

    @rule(key=st.sampled_from([MISSING, None, "", "a b", "x" * 129, True, [KEY]]), value=VALUES)
    def message_without_a_usable_key(self, key: Any, value: Any) -> None:
        """No valid key value: no instance is picked or made, nothing changes (spec §2)."""
        payload: dict[str, Any] = {} if key is MISSING else {"id": key}
        if value is not MISSING:
            payload["v"] = value
        self.eng.put_message("In", payload)

    @rule(
        action=st.sampled_from(sorted(TARGETS)),
        note=st.sampled_from(["", "checked valve", "n" * 256]),
        seconds=st.sampled_from([1, 60, 3600, INT_MAX]),
    )
    def operate(self, action: str, note: str, seconds: int) -> None:
        entry: dict[str, Any] = {
            "requestId": self.request_id(),
            "alarmModelName": "sm",
            "keyValue": KEY,
        }
        if note:
            entry["note"] = note
        snooze = seconds if action == "SNOOZE" else None
        if snooze is not None:
            entry["snoozeDuration"] = snooze
        verb = VERB[action]
        answer = batch_alarm_action({"sm": self.eng}, verb, {f"{verb}ActionRequests": [entry]})
        if self.ref.state is None:  # no instance yet: the key is unknown
            [error] = answer["errorEntries"]
            assert error["requestId"] == entry["requestId"]
            assert error["errorCode"] == "ResourceNotFoundException"
            return
        # an action that does not fit the state is ignored without an error entry (§7)
        assert answer == {"errorEntries": []}
        self.ref.operate(action, self.clock.now(), note, snooze)

    @rule(action=st.sampled_from(sorted(TARGETS)))
    def unknown_key_and_model(self, action: str) -> None:
        verb = VERB[action]
        extra = {"snoozeDuration": 60} if action == "SNOOZE" else {}
        entries = [
            {"requestId": "u1", "alarmModelName": "sm", "keyValue": "nobody", **extra},
            {"requestId": "u2", "alarmModelName": "other", "keyValue": KEY, **extra},
            {"requestId": "u3", "alarmModelName": "sm", **extra},  # keyed model, no key
        ]
        answer = batch_alarm_action({"sm": self.eng}, verb, {f"{verb}ActionRequests": entries})
        assert [(e["requestId"], e["errorCode"]) for e in answer["errorEntries"]] == [
            ("u1", "ResourceNotFoundException"),
            ("u2", "ResourceNotFoundException"),
            ("u3", "InvalidRequestException"),  # a key the model cannot do without
        ]

    @rule(action=st.sampled_from(sorted(TARGETS)))
    def duplicate_request_ids(self, action: str) -> None:
        """ "Each ID must be unique within each batch": refused as a whole, nothing applied."""
        verb = VERB[action]
        extra = {"snoozeDuration": 60} if action == "SNOOZE" else {}
        entry = {"requestId": "same", "alarmModelName": "sm", "keyValue": KEY, **extra}
        with pytest.raises(DetectorModelError, match=r"requestId.*unique"):
            batch_alarm_action({"sm": self.eng}, verb, {f"{verb}ActionRequests": [entry, entry]})

    @rule(seconds=st.sampled_from([0, -1, INT_MAX + 1, 2**53, 60.5, "60", None, True]))
    def snooze_duration_out_of_range(self, seconds: Any) -> None:
        entry = {"requestId": self.request_id(), "alarmModelName": "sm", "keyValue": KEY}
        if seconds is not None:
            entry["snoozeDuration"] = seconds
        with pytest.raises(DetectorModelError, match=r"snoozeDuration"):
            batch_alarm_action({"sm": self.eng}, "snooze", {"snoozeActionRequests": [entry]})

    @rule(seconds=st.sampled_from([1, 30, 59, 60, 61, 3600, 10**6]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.eng.tick()
        self.ref.advance(self.clock.now())

    # ---------------------------------------------------------------- checks

    @invariant()
    def describe_matches_the_table(self) -> None:
        if self.engine is None:
            return
        ref = self.ref
        if ref.state is None:
            assert self.eng.key_values() == []
            return
        alarm = self.eng.describe(KEY)["alarm"]
        assert alarm["alarmModelName"] == "sm"
        assert alarm["keyValue"] == KEY
        assert alarm["severity"] == 2
        state = alarm["alarmState"]
        assert state["stateName"] == ref.state
        if ref.value is None:
            assert "ruleEvaluation" not in state
        else:
            assert state["ruleEvaluation"] == {
                "simpleRuleEvaluation": {
                    "inputPropertyValue": ex.format_value(ref.value),
                    "operator": "GREATER",
                    "thresholdValue": str(THRESHOLD),
                }
            }
        assert state.get("customerAction") == ref.customer_action
        assert state.get("systemEvent") == ref.system_event

    @invariant()
    def one_set_of_requests_per_state_change(self) -> None:
        """Each change runs the alarm action once and, ack flow on, notifies once per email
        and SMS configuration; a message that keeps the state sends nothing."""
        if self.engine is None:
            return
        actions = [r for r in self.kept.requests if r.target.get("targetArn")]
        notices = [r for r in self.kept.requests if r.target.get("channel")]
        assert [r.state_name for r in actions] == self.ref.entered
        assert [r.state_name for r in notices] == (
            [s for s in self.ref.entered for _channel in ("email", "sms")]
            if self.ref.ack_flow
            else []
        )
        for request in actions:
            assert request.payload["alarmState"]["stateName"] == request.state_name
        names = [r.event_name for r in self.kept.requests]
        assert len(names) == len(set(names)), "a request was sent twice"


AlarmMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAlarmStateMachine = AlarmMachine.TestCase


def test_the_table_covers_every_state() -> None:
    """The table reaches each of AWS's six states (so the machine can check them all)."""
    seen: set[str] = set()
    for ack_flow in (True, False):
        t = Table(ack_flow, disabled=True)
        t.message(60)
        seen.add(t.state or "")
        t.operate("ENABLE", 0, "", None)
        t.message(60)
        seen.add(t.state or "")
        t.operate("ACKNOWLEDGE", 0, "", None)
        seen.add(t.state or "")
        t.message(10)
        t.message(60)
        t.message(10)
        seen.add(t.state or "")
        t.operate("SNOOZE", 0, "", 10)
        seen.add(t.state or "")
        t.advance(10)
        seen.add(t.state or "")
    assert seen == {"DISABLED", "NORMAL", "ACTIVE", "ACKNOWLEDGED", "LATCHED", "SNOOZE_DISABLED"}
