"""The alarm state machine, cell by cell, against what AWS documents (spec §7).

Every state an instance can be in, with the acknowledge flow on and off, meets every event:
a message whose value breaches the rule, one that does not, one without the value, each of
the five operator actions, and the snooze running out. The expected cell says where the
alarm goes, or that it stays; a cell that moves the alarm also runs its alarm action once
and, with the acknowledge flow on, notifies once, and DescribeAlarm shows what caused it.

What the cells follow, by AWS page:

- AlarmState (iotevents-data API reference): DISABLED "isn't ready to evaluate data";
  NORMAL "ready to evaluate data"; ACTIVE "invoked"; ACKNOWLEDGED "invoked and you
  acknowledged"; SNOOZE_DISABLED "disabled for a specified period of time. After the
  snooze time, the alarm automatically changes to the NORMAL state"; LATCHED "invoked ...
  the data ... is within the specified range. To change the alarm to the NORMAL state, you
  must acknowledge the alarm".
- AcknowledgeFlow: "If TRUE ... You must choose to acknowledge the notification before the
  alarm state can return to NORMAL. If FALSE, you won't receive notifications. The alarm
  automatically changes to the NORMAL state when the input property value returns to the
  specified range"; SiteWise, Respond to alarms: "You must enable the acknowledge flow on
  the alarm so that you can acknowledge the alarm".
- InitializationConfiguration: ``disabledOnInitialization`` "If FALSE, all alarm instances
  created based on the alarm model are activated. The default value is TRUE".
- CustomerAction ``actionName``: SNOOZE -> SNOOZE_DISABLED, ENABLE -> NORMAL, DISABLE ->
  DISABLED, ACKNOWLEDGE -> ACKNOWLEDGED, RESET -> NORMAL; its ``<verb>ActionConfiguration``
  members (``note``, and ``snoozeDuration`` for a snooze).
- StateChangeConfiguration: ``triggerType`` SNOOZE_TIMEOUT, "the snooze duration ends and
  the alarm automatically changes to the NORMAL state" (SystemEvent ``eventType``
  STATE_CHANGE).
- SimpleRule ``comparisonOperator``: GREATER | GREATER_OR_EQUAL | LESS | LESS_OR_EQUAL |
  EQUAL | NOT_EQUAL; ``threshold`` "a number or ... an AWS IoT Events input attribute";
  SimpleRuleEvaluation ``inputPropertyValue``, ``operator``, ``thresholdValue`` (Strings).

Where AWS is silent the cells follow spec §7's Decisions (LATCHED + breached -> ACTIVE; an
action that does not fit the state changes nothing) and plantwatch's kept behaviour (a
message without a comparable value keeps the state; the operator actions' own states, e.g.
ENABLE only from DISABLED and SNOOZE not from SNOOZE_DISABLED, as the spec's table lists).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from detector_models import RecordingSink

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import expr as ex
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, AlarmStateError, load_alarm_model
from cloud.detectors.alarms.operations import batch_alarm_action
from edge.clock import ManualClock

KEY = "b7"
SNOOZE_S = 600
INPUT = {
    "inputName": "In",
    "inputDefinition": {
        "attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}, {"jsonPath": "limit"}]
    },
}


def body(
    *,
    ack_flow: bool = True,
    disabled: bool = False,
    operator: str = "GREATER",
    threshold: str = "50",
    severity: int | None = 3,
) -> dict[str, Any]:
    model: dict[str, Any] = {
        "alarmModelName": "m",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "key": "id",
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$input.In.v",
                "comparisonOperator": operator,
                "threshold": threshold,
            }
        },
        "alarmNotification": {
            "notificationActions": [
                {
                    "action": {
                        "lambdaAction": {
                            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:n"
                        }
                    },
                    "emailConfigurations": [
                        {
                            "from": "ops@example.com",
                            "recipients": {
                                "to": [{"ssoIdentity": {"identityStoreId": "d-1", "userId": "u"}}]
                            },
                        }
                    ],
                }
            ]
        },
        "alarmEventActions": {
            "alarmActions": [{"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:a"}}]
        },
        "alarmCapabilities": {
            "initializationConfiguration": {"disabledOnInitialization": disabled},
            "acknowledgeFlow": {"enabled": ack_flow},
        },
    }
    if severity is not None:
        model["severity"] = severity
    return model


class Alarm:
    """One alarm instance on a manual clock; every request the engine hands over is kept."""

    def __init__(self, **kw: Any) -> None:
        self.clock = ManualClock()
        self.sink = RecordingSink()
        self.store = InMemoryStateStore()
        self.engine = AlarmEngine(
            load_alarm_model(body(**kw)),
            [load_input(INPUT)],
            self.store,
            self.clock,
            self.sink,
        )

    def send(self, value: Any = None, **fields: Any) -> None:
        payload: dict[str, Any] = {"id": KEY, **fields}
        if value is not None:
            payload["v"] = value
        self.engine.put_message("In", payload)
        self.clock.advance(1)
        self.engine.tick()

    @property
    def state(self) -> str:
        return self.engine.state_of(KEY)

    def described(self) -> dict[str, Any]:
        return self.engine.describe(KEY)["alarm"]


BREACH, CLEAR = 90, 10
"""Values on either side of the matrix's rule (``v GREATER 50``)."""

SETUP: dict[str, tuple[str, ...]] = {
    "DISABLED": ("clear", "DISABLE"),
    "NORMAL": ("clear",),
    "ACTIVE": ("breach",),
    "ACKNOWLEDGED": ("breach", "ACKNOWLEDGE"),
    "LATCHED": ("breach", "clear"),
    "SNOOZE_DISABLED": ("breach", "SNOOZE"),
}
"""How an instance reaches each state (ACKNOWLEDGED and LATCHED need the acknowledge flow)."""

EVENTS = (
    "breach",
    "clear",
    "missing",
    "ACKNOWLEDGE",
    "SNOOZE",
    "snooze ends",
    "DISABLE",
    "ENABLE",
    "RESET",
)


def expected(ack_flow: bool) -> dict[str, dict[str, str | None]]:
    """State -> event -> the state it leads to, or None: the event changes nothing."""
    on = ack_flow
    return {
        "DISABLED": {
            "breach": None,  # "isn't ready to evaluate data"
            "clear": None,
            "missing": None,
            "ACKNOWLEDGE": None,
            "SNOOZE": None,
            "snooze ends": None,
            "DISABLE": None,
            "ENABLE": "NORMAL",
            "RESET": None,
        },
        "NORMAL": {
            "breach": "ACTIVE",
            "clear": None,
            "missing": None,
            "ACKNOWLEDGE": None,
            "SNOOZE": "SNOOZE_DISABLED",
            "snooze ends": None,
            "DISABLE": "DISABLED",
            "ENABLE": None,
            "RESET": "NORMAL",  # re-entered: the reset is recorded and notified
        },
        "ACTIVE": {
            "breach": None,
            "clear": "LATCHED" if on else "NORMAL",
            "missing": None,
            "ACKNOWLEDGE": "ACKNOWLEDGED" if on else None,
            "SNOOZE": "SNOOZE_DISABLED",
            "snooze ends": None,
            "DISABLE": "DISABLED",
            "ENABLE": None,
            "RESET": "NORMAL",
        },
        "ACKNOWLEDGED": {
            "breach": None,
            "clear": "NORMAL",
            "missing": None,
            "ACKNOWLEDGE": None,
            "SNOOZE": "SNOOZE_DISABLED",
            "snooze ends": None,
            "DISABLE": "DISABLED",
            "ENABLE": None,
            "RESET": "NORMAL",
        },
        "LATCHED": {
            "breach": "ACTIVE",  # spec §7 Decision
            "clear": None,  # back in range is not enough: it must be acknowledged
            "missing": None,
            "ACKNOWLEDGE": "NORMAL",
            "SNOOZE": "SNOOZE_DISABLED",
            "snooze ends": None,
            "DISABLE": "DISABLED",
            "ENABLE": None,
            "RESET": "NORMAL",
        },
        "SNOOZE_DISABLED": {
            "breach": None,  # data is ignored while snoozed
            "clear": None,
            "missing": None,
            "ACKNOWLEDGE": None,
            "SNOOZE": None,
            "snooze ends": "NORMAL",
            "DISABLE": "DISABLED",
            "ENABLE": None,
            "RESET": "NORMAL",
        },
    }


def run(alarm: Alarm, step: str) -> None:
    """One event; an operator action that does not fit the state raises AlarmStateError."""
    if step == "breach":
        alarm.send(BREACH)
    elif step == "clear":
        alarm.send(CLEAR)
    elif step == "missing":
        alarm.send(None, other=1)
    elif step == "snooze ends":
        alarm.clock.advance(SNOOZE_S)
        alarm.engine.tick()
    elif step == "SNOOZE":
        alarm.engine.snooze(KEY, SNOOZE_S, note="n-snooze", who="ana")
    else:
        getattr(alarm.engine, step.lower())(KEY, note=f"n-{step.lower()}", who="ana")


CELLS = [
    (ack_flow, state, event, target)
    for ack_flow in (True, False)
    for state, row in expected(ack_flow).items()
    if ack_flow or state not in ("ACKNOWLEDGED", "LATCHED")
    for event, target in row.items()
]


def test_the_matrix_covers_every_state_and_event() -> None:
    for ack_flow in (True, False):
        table = expected(ack_flow)
        assert set(table) == set(SETUP)
        assert all(tuple(row) == EVENTS for row in table.values())
    assert len(CELLS) == 6 * len(EVENTS) + 4 * len(EVENTS)


def test_states_that_need_the_acknowledge_flow_are_never_reached_without_it() -> None:
    alarm = Alarm(ack_flow=False)
    seen = set()
    for step in ("clear", "breach", "breach", "clear", "breach", "RESET", "breach", "clear"):
        run(alarm, step)
        seen.add(alarm.state)
    run(alarm, "breach")
    with pytest.raises(AlarmStateError, match="acknowledge flow is off"):
        run(alarm, "ACKNOWLEDGE")
    assert seen == {"NORMAL", "ACTIVE"}


@pytest.mark.parametrize(
    ("ack_flow", "state", "event", "target"),
    CELLS,
    ids=[f"ack{'on' if a else 'off'}-{s}-{e.replace(' ', '_')}" for a, s, e, _t in CELLS],
)
def test_transition(ack_flow: bool, state: str, event: str, target: str | None) -> None:
    alarm = Alarm(ack_flow=ack_flow)
    for step in SETUP[state]:
        run(alarm, step)
    assert alarm.state == state
    before_requests = len(alarm.sink.requests)
    before = alarm.described()
    alarm.clock.advance(5)

    if target is None and event in ("ACKNOWLEDGE", "SNOOZE", "DISABLE", "ENABLE", "RESET"):
        with pytest.raises(AlarmStateError) as info:
            run(alarm, event)
        assert info.value.state == state
    else:
        run(alarm, event)

    after = alarm.described()
    sent = alarm.sink.requests[before_requests:]
    if target is None:
        assert alarm.state == state
        assert sent == []  # nothing changed, nothing sent
        assert after["alarmState"].get("customerAction") == before["alarmState"].get(
            "customerAction"
        )
        return

    assert alarm.state == target
    actions = [r for r in sent if not r.target.get("channel")]
    notices = [r for r in sent if r.target.get("channel")]
    assert [r.state_name for r in actions] == [target]  # the alarm action, once
    assert [r.state_name for r in notices] == ([target] if ack_flow else [])
    [action] = actions
    payload_state = action.payload["alarmState"]
    assert payload_state["stateName"] == target
    described_state = after["alarmState"]
    assert described_state["stateName"] == target
    if event in ("ACKNOWLEDGE", "SNOOZE", "DISABLE", "ENABLE", "RESET"):
        verb = event.lower()
        config: dict[str, Any] = {"note": f"n-{verb}"}
        if event == "SNOOZE":
            config["snoozeDuration"] = SNOOZE_S
        customer = {"actionName": event, f"{verb}ActionConfiguration": config}
        assert described_state["customerAction"] == customer
        assert payload_state["customerAction"] == customer
    if event == "snooze ends":
        system = {
            "eventType": "STATE_CHANGE",
            "stateChangeConfiguration": {"triggerType": "SNOOZE_TIMEOUT"},
        }
        assert described_state["systemEvent"] == system
        assert payload_state["systemEvent"] == system
    if event == "RESET":
        # "Reset an alarm to clear its state and latest value" (SiteWise, Respond to alarms)
        assert "ruleEvaluation" not in described_state
    elif event in ("breach", "clear"):
        value = BREACH if event == "breach" else CLEAR
        evaluation = {
            "simpleRuleEvaluation": {
                "inputPropertyValue": str(value),
                "operator": "GREATER",
                "thresholdValue": "50",
            }
        }
        assert described_state["ruleEvaluation"] == evaluation
        assert payload_state["ruleEvaluation"] == evaluation


@pytest.mark.parametrize("disabled", [True, False])
def test_a_new_instance_starts_as_initialization_configuration_says(disabled: bool) -> None:
    alarm = Alarm(disabled=disabled)
    alarm.send(BREACH)  # the first message creates the instance
    if disabled:
        assert alarm.state == "DISABLED"  # created, not evaluated
        assert alarm.sink.requests == []
    else:
        assert alarm.state == "ACTIVE"  # NORMAL, then evaluated
        assert [r.state_name for r in alarm.sink.requests if not r.target.get("channel")] == [
            "ACTIVE"
        ]


@pytest.mark.parametrize(
    ("ack_flow", "state", "event"),
    [(a, s, e) for a, s, e, t in CELLS if t is None and e.isupper()],
)
def test_an_action_that_does_not_fit_is_no_error_entry_and_changes_nothing(
    ack_flow: bool, state: str, event: str
) -> None:
    """Spec §7 Decision: requests that do not fit the current state are logged and ignored
    (BatchAcknowledgeAlarm & co. answer errorEntries only for what they cannot take)."""
    alarm = Alarm(ack_flow=ack_flow)
    for step in SETUP[state]:
        run(alarm, step)
    before = alarm.described()
    sent = len(alarm.sink.requests)
    verb = event.lower()
    entry: dict[str, Any] = {"requestId": "r1", "alarmModelName": "m", "keyValue": KEY}
    if event == "SNOOZE":
        entry["snoozeDuration"] = 60
    answer = batch_alarm_action({"m": alarm.engine}, verb, {f"{verb}ActionRequests": [entry]})
    assert answer == {"errorEntries": []}
    assert alarm.described() == before
    assert len(alarm.sink.requests) == sent


# ---------------------------------------------------------------- the rule

OPERATOR_CASES: list[tuple[str, str, Any, bool]] = [
    # operator, threshold, value, breached
    ("GREATER", "50", 51, True),
    ("GREATER", "50", 50, False),
    ("GREATER", "50", 50.0, False),
    ("GREATER", "50", 50.5, True),
    ("GREATER", "50.5", 50.5, False),
    ("GREATER", "-5", -4, True),
    ("GREATER", "-5", -6, False),
    ("GREATER_OR_EQUAL", "50", 50, True),
    ("GREATER_OR_EQUAL", "50", 50.0, True),
    ("GREATER_OR_EQUAL", "50", 49.999, False),
    ("LESS", "50", 49, True),
    ("LESS", "50", 50, False),
    ("LESS", "0.1", 0.05, True),
    ("LESS_OR_EQUAL", "50", 50, True),
    ("LESS_OR_EQUAL", "50", 50.01, False),
    ("EQUAL", "50", 50, True),
    ("EQUAL", "50", 50.0, True),
    ("EQUAL", "50", 51, False),
    ("NOT_EQUAL", "50", 51, True),
    ("NOT_EQUAL", "50", 50.0, False),
    # a constant expression as the threshold
    ("GREATER", "40 + 10", 51, True),
    ("GREATER", "40 + 10", 50, False),
    ("GREATER", "100 / 2", 50, False),
    # string-looking values: quoted text is a string, compared with strings only
    ("EQUAL", "'OPEN'", "OPEN", True),
    ("EQUAL", "'OPEN'", "open", False),
    ("NOT_EQUAL", "'OPEN'", "CLOSED", True),
    ("NOT_EQUAL", "'OPEN'", "OPEN", False),
    # but the threshold is "a number or ... an input attribute", and AWS quotes a number
    # literal ("'123' # Integer"): a quoted number is that number
    ("EQUAL", "'50'", "50", False),
    ("EQUAL", "'50'", 50, True),
    ("NOT_EQUAL", "'50'", 50, False),
    ("GREATER", "'50.5'", 51, True),
    ("EQUAL", "50", "50", False),  # nor a string the number 50
    ("NOT_EQUAL", "50", "50", True),
    ("GREATER", "50", "90", False),  # ordering holds between two numbers or two strings
    ("LESS", "50", "10", False),
    ("GREATER", "'B'", "C", True),
    ("GREATER", "'B'", "A", False),
    ("EQUAL", "true", True, True),
    ("EQUAL", "true", False, False),
    ("NOT_EQUAL", "true", False, True),
    ("GREATER", "50", True, False),
]


@pytest.mark.parametrize(("operator", "threshold", "value", "breached"), OPERATOR_CASES)
def test_comparison_operator(operator: str, threshold: str, value: Any, breached: bool) -> None:
    alarm = Alarm(operator=operator, threshold=threshold)
    alarm.send(value)
    assert alarm.state == ("ACTIVE" if breached else "NORMAL")
    evaluation = alarm.described()["alarmState"]["ruleEvaluation"]["simpleRuleEvaluation"]
    assert evaluation["operator"] == operator
    assert evaluation["inputPropertyValue"] == ex.format_value(value)


@pytest.mark.parametrize(("operator", "threshold", "value", "breached"), OPERATOR_CASES)
def test_each_operator_agrees_with_the_expression_language(
    operator: str, threshold: str, value: Any, breached: bool
) -> None:
    """The rule is ``inputProperty <op> threshold``: the same comparison a detector's
    condition makes with the expression language's operator, a quoted number threshold
    being that number."""
    symbol = {
        "GREATER": ">",
        "GREATER_OR_EQUAL": ">=",
        "LESS": "<",
        "LESS_OR_EQUAL": "<=",
        "EQUAL": "==",
        "NOT_EQUAL": "!=",
    }[operator]
    quoted_number = threshold.startswith("'") and ex.decimal_text(threshold[1:-1]) is not None
    node = ex.parse(f"$input.In.v {symbol} ({threshold[1:-1] if quoted_number else threshold})")

    class Context:
        def input_value(self, name: str, path: tuple[Any, ...]) -> Any:
            return ex.lookup_path({"v": value}, path)

        def variable(self, name: str) -> Any:
            return ex.UNDEFINED

        def timeout(self, name: str) -> bool:
            return False

        def trigger_type(self) -> str:
            return "Message"

        def current_input(self) -> str | None:
            return "In"

    assert (ex.evaluate(node, Context()) is True) == breached


def test_threshold_from_an_input_attribute() -> None:
    alarm = Alarm(threshold="$input.In.limit")
    alarm.send(60, limit=70)
    assert alarm.state == "NORMAL"
    alarm.send(60, limit=55)
    assert alarm.state == "ACTIVE"
    evaluation = alarm.described()["alarmState"]["ruleEvaluation"]["simpleRuleEvaluation"]
    assert evaluation == {"inputPropertyValue": "60", "operator": "GREATER", "thresholdValue": "55"}
    alarm.send(60)  # no limit in this message: nothing to compare, the state is kept
    assert alarm.state == "ACTIVE"


@pytest.mark.parametrize("value", [None, [90], {"x": 90}])
def test_no_comparable_value_keeps_the_state(value: Any) -> None:
    for operator in ("GREATER", "NOT_EQUAL"):
        alarm = Alarm(operator=operator)
        alarm.send(BREACH if operator == "GREATER" else 50)
        state = alarm.state
        sent = len(alarm.sink.requests)
        payload: dict[str, Any] = {"id": KEY}
        if value is not None:
            payload["v"] = value
        alarm.engine.put_message("In", payload)
        assert alarm.state == state
        assert len(alarm.sink.requests) == sent


# ---------------------------------------------------------------- shapes


def test_describe_alarm_shape() -> None:
    alarm = Alarm()
    alarm.send(85.5)
    described = alarm.engine.describe(KEY)
    assert set(described) == {"alarm"}
    assert described["alarm"] == {
        "alarmModelName": "m",
        "alarmModelVersion": "1",
        "keyValue": KEY,
        "severity": 3,
        "creationTime": alarm.clock.now() - 1,
        "lastUpdateTime": alarm.clock.now() - 1,
        "alarmState": {
            "stateName": "ACTIVE",
            "ruleEvaluation": {
                "simpleRuleEvaluation": {
                    "inputPropertyValue": "85.5",
                    "operator": "GREATER",
                    "thresholdValue": "50",
                }
            },
        },
    }


def test_action_payload_and_notification_event_shapes() -> None:
    alarm = Alarm()
    alarm.send(85.5)
    [action] = [r for r in alarm.sink.requests if not r.target.get("channel")]
    assert action.payload == {
        "alarmModelName": "m",
        "keyValue": KEY,
        "severity": 3,
        "stateUpdateTime": round((alarm.clock.now() - 1) * 1000),
        "alarmModelVersion": "1",
        "alarmState": {
            "stateName": "ACTIVE",
            "ruleEvaluation": {
                "simpleRuleEvaluation": {
                    "inputPropertyValue": "85.5",
                    "operator": "GREATER",
                    "thresholdValue": "50",
                }
            },
        },
    }
    notice = {"state": "ACTIVE", "time": 1_700_000_000.0, "value": 85.5, "threshold": 50}
    event = alarm.engine.notification_event(KEY, notice)
    assert isinstance(event["notificationEventPayload"], str)  # a JSON string (§7)
    assert json.loads(event["notificationEventPayload"]) == {
        "alarmModelName": "m",
        "keyValue": KEY,
        "severity": 3,
        "stateUpdateTime": 1_700_000_000_000,
        "alarmState": {
            "stateName": "ACTIVE",
            "ruleEvaluation": {
                "simpleRule": {"inputProperty": 85.5, "operator": "GREATER", "threshold": 50}
            },
        },
    }


def test_notification_event_leaves_out_what_the_model_does_not_configure() -> None:
    """AWS's managed notification Lambda (developer guide, Managing alarm notifications)
    reads the optional members with defaults: ``email.get('subject', <alarm text>)``,
    ``email.get('additionalMessage', '')``, ``sns_config.get('additionalMessage', '')``, and
    appends the message to its text. A member sent as null reaches it as None: no subject,
    and a TypeError adding None to the text. So a member the model leaves out is left out."""
    model = body()
    action = model["alarmNotification"]["notificationActions"][0]
    action["smsConfigurations"] = [{"recipients": [{"ssoIdentity": {"identityStoreId": "d-1"}}]}]
    engine = AlarmEngine(
        load_alarm_model(model),
        [load_input(INPUT)],
        InMemoryStateStore(),
        ManualClock(),
        RecordingSink(),
    )
    notice = {"state": "ACTIVE", "time": 1_700_000_000.0, "value": 90, "threshold": 50}
    event = engine.notification_event(KEY, notice)
    assert event["emailConfigurations"] == [
        {"from": "ops@example.com", "to": ["ops@example.com"], "cc": [], "bcc": []}
    ]
    assert event["smsConfigurations"] == [{"phoneNumbers": ["+15555550100"]}]


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("payload", "shown"),
    [
        ({"v": 90}, "missing"),
        ({"id": "a b", "v": 90}, "'a b'"),
        ({"id": "x" * 129, "v": 90}, "129 characters"),
        ({"id": True, "v": 90}, "True"),
        ({"id": {"k": 1}, "v": 90}, "{'k': 1}"),
    ],
)
def test_a_message_without_a_valid_key_skips_the_model_with_a_warning(
    payload: dict[str, Any], shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Spec §1 Decision: a missing or invalid key skips that model with a logged warning
    (keyValue: 1-128 of ^[a-zA-Z0-9\\-_:]+$, the API reference). Once per kind of bad key:
    a stream of them does not flood the log."""
    alarm = Alarm()
    with caplog.at_level("WARNING", logger="cloud.detectors.alarms.engine"):
        for _ in range(3):
            alarm.engine.put_message("In", payload)
    assert alarm.engine.key_values() == []
    assert alarm.sink.requests == []
    [record] = caplog.records
    message = record.getMessage()
    assert message.startswith("alarm model m: ")
    assert "key 'id'" in message and shown in message
    assert "skipped" in message


# ---------------------------------------------------------------- a snooze that has run out


def test_a_message_after_the_snooze_ran_out_is_evaluated_in_normal() -> None:
    """SNOOZE_DISABLED: "After the snooze time, the alarm automatically changes to the NORMAL
    state" (AlarmState). A message that arrives after that time, before the timer has run
    (a Lambda sees it first), meets a NORMAL alarm, as on AWS: the expiry comes first."""
    alarm = Alarm()
    alarm.send(BREACH)
    alarm.engine.snooze(KEY, SNOOZE_S, note="maintenance", who="ana")
    alarm.clock.advance(SNOOZE_S + 30)  # no tick: the timer has not run yet
    alarm.engine.put_message("In", {"id": KEY, "v": BREACH})
    assert alarm.state == "ACTIVE"
    states = [r.state_name for r in alarm.sink.requests if not r.target.get("channel")]
    assert states == ["ACTIVE", "SNOOZE_DISABLED", "NORMAL", "ACTIVE"]
    [expiry] = [
        r for r in alarm.sink.requests if not r.target.get("channel") and r.state_name == "NORMAL"
    ]
    assert expiry.payload["alarmState"]["systemEvent"] == {
        "eventType": "STATE_CHANGE",
        "stateChangeConfiguration": {"triggerType": "SNOOZE_TIMEOUT"},
    }
    assert alarm.engine.tick() == 0  # the expiry ran once, not again


@pytest.mark.parametrize(
    ("action", "target"),
    [("SNOOZE", "SNOOZE_DISABLED"), ("DISABLE", "DISABLED"), ("RESET", "NORMAL")],
)
def test_an_action_after_the_snooze_ran_out_meets_a_normal_alarm(action: str, target: str) -> None:
    alarm = Alarm()
    alarm.send(BREACH)
    alarm.engine.snooze(KEY, SNOOZE_S)
    alarm.clock.advance(SNOOZE_S + 30)  # no tick
    run(alarm, action)  # a second snooze fits NORMAL, not SNOOZE_DISABLED
    assert alarm.state == target
    states = [r.state_name for r in alarm.sink.requests if not r.target.get("channel")]
    assert states == ["ACTIVE", "SNOOZE_DISABLED", "NORMAL", target]


def test_acknowledging_after_the_snooze_ran_out_is_refused_as_normal() -> None:
    alarm = Alarm()
    alarm.send(BREACH)
    alarm.engine.snooze(KEY, SNOOZE_S)
    alarm.clock.advance(SNOOZE_S + 30)  # no tick
    with pytest.raises(AlarmStateError) as info:
        alarm.engine.acknowledge(KEY)
    assert info.value.state == "NORMAL"
    # the expiry itself is kept: written, and its action sent, once
    assert alarm.store.get("alarms/m", KEY)["state"] == "NORMAL"
    states = [r.state_name for r in alarm.sink.requests if not r.target.get("channel")]
    assert states == ["ACTIVE", "SNOOZE_DISABLED", "NORMAL"]
    assert alarm.engine.tick() == 0


def test_a_function_that_reads_one_alarm_ends_its_run_out_snooze_before_the_message() -> None:
    """On AWS the detector function builds its engine per invocation and reads only the
    instance a message needs (``preload=False``): the timers function may not have run."""
    alarm = Alarm()
    alarm.send(BREACH)
    alarm.engine.snooze(KEY, SNOOZE_S)
    alarm.engine.close()
    alarm.clock.advance(SNOOZE_S + 30)
    sink = RecordingSink()
    function = AlarmEngine(
        load_alarm_model(body()),
        [load_input(INPUT)],
        alarm.store,
        alarm.clock,
        sink,
        preload=False,
    )
    function.put_message("In", {"id": KEY, "v": BREACH})
    assert function.state_of(KEY) == "ACTIVE"
    assert [r.state_name for r in sink.requests if not r.target.get("channel")] == [
        "NORMAL",
        "ACTIVE",
    ]
