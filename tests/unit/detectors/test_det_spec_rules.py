"""Limits and error texts iotevents-contracts states beside its rules that no other test
pinned: each case is the smallest body that breaks one rule, and the one next to it that
keeps it (so a check moved by one, or dropped, fails here)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from cloud.detectors.alarms.operations import batch_alarm_action
from cloud.detectors.messages import batch_put_message
from edge.clock import ManualClock
from edge.errors import DetectorModelError

ROLE = "arn:aws:iam::123456789012:role/r"
INPUT = {"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "id"}]}}


def model(*actions: dict[str, Any], states: list[Any] | None = None, **top: Any) -> Any:
    event = {"eventName": "e", "condition": 'currentInput("In")', "actions": list(actions)}
    body = {
        "detectorModelName": "m",
        "roleArn": ROLE,
        "detectorModelDefinition": {
            "initialStateName": "A",
            "states": [{"stateName": "A", "onInput": {"events": [event]}}]
            if states is None
            else states,
        },
        **top,
    }
    return load_detector_model(body)


def an_input(name: str = "In", path: str = "id") -> Any:
    return load_input({"inputName": name, "inputDefinition": {"attributes": [{"jsonPath": path}]}})


def timer(**fields: Any) -> dict[str, Any]:
    return {"setTimer": {"timerName": "t", **fields}}


def topic(text: str) -> dict[str, Any]:
    return {"iotTopicPublish": {"mqttTopic": text}}


# (rule in the spec, a body that breaks it, the error, the body beside it that keeps it)
CASES: list[tuple[str, Callable[[], Any], str, Callable[[], Any]]] = [
    (
        "§4 setTimer: exactly one of seconds | durationExpression (both given)",
        lambda: model(timer(seconds=60, durationExpression="60")),
        "actions[0].setTimer: exactly one of 'seconds' or 'durationExpression' is required",
        lambda: model(timer(durationExpression="60")),
    ),
    (
        "§4 setTimer: exactly one of seconds | durationExpression (neither given)",
        lambda: model(timer()),
        "actions[0].setTimer: exactly one of 'seconds' or 'durationExpression' is required",
        lambda: model(timer(seconds=60)),
    ),
    (
        "§2 detectorModelDefinition.states: at least 1",
        lambda: model(states=[]),
        "$.detectorModelDefinition.states: at least one state is required",
        lambda: model(states=[{"stateName": "A"}]),
    ),
    (
        "§1 inputName: 1-128 characters",
        lambda: an_input("I" * 129),
        "$.inputName: 129 characters; at most 128 allowed",
        lambda: an_input("I" * 128),
    ),
    (
        "§1 inputName: ^[a-zA-Z][a-zA-Z0-9_]*$",
        lambda: an_input("In-1"),
        "$.inputName: 'In-1' does not match ^[a-zA-Z][a-zA-Z0-9_]*$",
        lambda: an_input("In_1"),
    ),
    (
        "§1 jsonPath: 1-128 characters",
        lambda: an_input(path="p" * 129),
        "$.inputDefinition.attributes[0].jsonPath: 129 characters; at most 128 allowed",
        lambda: an_input(path="p" * 128),
    ),
    (
        "§1 jsonPath: no arrays",
        lambda: an_input(path="temps[2]"),
        "$.inputDefinition.attributes[0].jsonPath: 'temps[2]' is not a dot-separated field path",
        lambda: an_input(path="sensorData.`motor temp`"),
    ),
    (
        "§2 detectorModelName: ^[a-zA-Z0-9_-]+$",
        lambda: model(detectorModelName="motor.v2"),
        "$.detectorModelName: 'motor.v2' does not match ^[a-zA-Z0-9_-]+$",
        lambda: model(detectorModelName="motor_v-2"),
    ),
    (
        "§2 evaluationMethod: BATCH or SERIAL",
        lambda: model(evaluationMethod="batch"),
        "$.evaluationMethod: 'batch': expected BATCH or SERIAL",
        lambda: model(evaluationMethod="SERIAL"),
    ),
    (
        "§4 iotTopicPublish.mqttTopic: 1-128 characters",
        lambda: model(topic("t" * 129)),
        "actions[0].iotTopicPublish.mqttTopic: 129 characters; at most 128 allowed",
        lambda: model(topic("t" * 128)),
    ),
    (
        "§4 payload: empty is rejected",
        lambda: model(
            {
                "sns": {
                    "targetArn": "arn:aws:sns:us-east-1:1:t",
                    "payload": {"contentExpression": "", "type": "STRING"},
                }
            }
        ),
        "actions[0].sns.payload.contentExpression: must not be empty",
        lambda: model(
            {
                "sns": {
                    "targetArn": "arn:aws:sns:us-east-1:1:t",
                    "payload": {"contentExpression": "'x'", "type": "STRING"},
                }
            }
        ),
    ),
]


@pytest.mark.parametrize(
    ("broken", "error", "kept"), [c[1:] for c in CASES], ids=[c[0].replace("§", "s") for c in CASES]
)
def test_a_stated_limit_refuses_one_past_it_with_its_text(
    broken: Callable[[], Any], error: str, kept: Callable[[], Any]
) -> None:
    with pytest.raises(DetectorModelError) as info:
        broken()
    assert error in str(info.value)
    assert "\n" not in str(info.value)
    kept()


def test_evaluation_method_defaults_to_batch() -> None:
    """§2: ``evaluationMethod`` is optional, ``BATCH`` by default."""
    assert model().evaluation_method == "BATCH"


ALARM = {
    "alarmModelName": "boilerHigh",
    "roleArn": ROLE,
    "key": "boilerId",
    "alarmRule": {
        "simpleRule": {
            "inputProperty": "$input.BoilerInput.temp",
            "comparisonOperator": "GREATER",
            "threshold": "80",
        }
    },
}
BOILER = {
    "inputName": "BoilerInput",
    "inputDefinition": {"attributes": [{"jsonPath": "boilerId"}, {"jsonPath": "temp"}]},
}


def entry(**fields: Any) -> dict[str, Any]:
    return {"requestId": "r1", "alarmModelName": "boilerHigh", "keyValue": "b7", **fields}


@pytest.mark.parametrize(
    ("verb", "item", "error"),
    [
        (
            "acknowledge",
            entry(alarmModelName="boiler high"),
            "BatchAcknowledgeAlarm: $.acknowledgeActionRequests[0].alarmModelName:"
            " expected 1-128 of [a-zA-Z0-9_-]",
        ),
        (
            "reset",
            entry(requestId="r" * 65),
            "BatchResetAlarm: $.resetActionRequests[0].requestId: expected 1-64 of [a-zA-Z0-9_-]",
        ),
        (
            "enable",
            entry(note="n" * 257),
            "BatchEnableAlarm: $.enableActionRequests[0].note:"
            " expected a string of at most 256 characters",
        ),
        (
            "snooze",
            entry(snoozeDuration="60"),
            "BatchSnoozeAlarm: $.snoozeActionRequests[0].snoozeDuration:"
            " expected a whole number of seconds",
        ),
    ],
)
def test_alarm_requests_refuse_fields_past_the_api_shape(
    verb: str, item: dict[str, Any], error: str
) -> None:
    """§7 Requests: requestId 1-64 of ^[a-zA-Z0-9_-]+$, note at most 256, snoozeDuration
    integer seconds; the entry beside each (at the limit) is taken."""
    engine = AlarmEngine(
        load_alarm_model(ALARM),
        [load_input(BOILER)],
        InMemoryStateStore(),
        ManualClock(),
        _Nothing(),
    )
    with pytest.raises(DetectorModelError) as info:
        batch_alarm_action({"boilerHigh": engine}, verb, {f"{verb}ActionRequests": [item]})
    assert error in str(info.value)
    fine = entry(requestId="r" * 64, note="n" * 256)
    if verb == "snooze":
        fine["snoozeDuration"] = 60
    result = batch_alarm_action({"boilerHigh": engine}, verb, {f"{verb}ActionRequests": [fine]})
    assert [e["errorCode"] for e in result["errorEntries"]] == ["ResourceNotFoundException"]


class _Nothing:
    def execute(self, request: Any) -> None:
        pass


def test_a_batch_runs_in_array_order_and_a_keyless_message_skips_the_model_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """§1 Decisions: messages of one batch are processed in array order (the last one's
    value stays), and a message whose key is missing or invalid skips the model with a
    logged warning, not an error entry."""
    spec_model = load_detector_model(
        {
            "detectorModelName": "motor",
            "key": "motorid",
            "roleArn": ROLE,
            "detectorModelDefinition": {
                "initialStateName": "A",
                "states": [
                    {
                        "stateName": "A",
                        "onInput": {
                            "events": [
                                {
                                    "eventName": "keep",
                                    "condition": 'currentInput("P")',
                                    "actions": [
                                        {
                                            "setVariable": {
                                                "variableName": "last",
                                                "value": "$input.P.pressure",
                                            }
                                        }
                                    ],
                                }
                            ]
                        },
                    }
                ],
            },
        }
    )
    attributes = [{"jsonPath": "motorid"}, {"jsonPath": "pressure"}]
    engine = DetectorEngine(
        spec_model,
        [load_input({"inputName": "P", "inputDefinition": {"attributes": attributes}})],
        InMemoryStateStore(),
        ManualClock(),
        _Nothing(),
    )

    def message(mid: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = base64.b64encode(json.dumps(body).encode()).decode()
        return {"messageId": mid, "inputName": "P", "payload": payload}

    request = {
        "messages": [
            message(f"m{n}", {"motorid": "m1", "pressure": i})
            for n, i in enumerate((3, 1, 4, 1, 5, 9, 2, 6))
        ]
        + [message("nokey", {"pressure": 7}), message("badkey", {"motorid": "m 1"})]
    }
    with caplog.at_level(logging.WARNING, logger="cloud.detectors.engine"):
        assert batch_put_message([engine], request) == {"BatchPutMessageErrorEntries": []}
    assert engine.key_values() == ["m1"]
    [last] = engine.describe("m1")["detector"]["state"]["variables"]
    assert last == {"name": "last", "value": "6"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("message without key 'motorid'; skipped" in w for w in warnings)
    assert any("key value 'm 1' does not match" in w and "skipped" in w for w in warnings)


def test_the_notification_event_writes_the_rule_evaluation_as_decimals() -> None:
    """§7 Notification Lambda event: AWS evaluates the rule on decimals and writes
    ``"inputProperty":85.0`` and ``"threshold":80.0`` into the notificationEventPayload
    string, also for an integer reading and a threshold of ``"80"``; a Lambda that reads the
    string (not only one that decodes it) sees the same text."""
    body = {**ALARM, "severity": 3}
    body["alarmCapabilities"] = {
        "initializationConfiguration": {"disabledOnInitialization": False},
        "acknowledgeFlow": {"enabled": True},
    }
    engine = AlarmEngine(
        load_alarm_model(body),
        [load_input(BOILER)],
        InMemoryStateStore(),
        ManualClock(),
        _Nothing(),
    )
    engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 85})
    notice = {"state": "ACTIVE", "time": 1_614_211_123.445, "value": 85, "threshold": 80}
    text = engine.notification_event("b7", notice)["notificationEventPayload"]
    assert text == (
        '{"alarmModelName":"boilerHigh","keyValue":"b7","severity":3,'
        '"stateUpdateTime":1614211123445,"alarmState":{"stateName":"ACTIVE",'
        '"ruleEvaluation":{"simpleRule":{"inputProperty":85.0,"operator":"GREATER",'
        '"threshold":80.0}}}}'
    )


def test_input_references_read_this_instances_latest_message_also_at_a_timer() -> None:
    """§3 Decision: ``$input.<Input>.<path>`` is the latest message of that input seen by
    this instance; it persists into timer evaluations, and is undefined if none arrived.
    Another instance's message is not this one's."""

    def sv(name: str, value: str) -> dict[str, Any]:
        return {"setVariable": {"variableName": name, "value": value}}

    body = {
        "detectorModelName": "m",
        "key": "id",
        "roleArn": ROLE,
        "detectorModelDefinition": {
            "initialStateName": "A",
            "states": [
                {
                    "stateName": "A",
                    "onInput": {
                        "events": [
                            {
                                "eventName": "arm",
                                "condition": 'currentInput("In")',
                                "actions": [{"setTimer": {"timerName": "hb", "seconds": 60}}],
                            },
                            {
                                "eventName": "expired",
                                "condition": 'timeout("hb")',
                                "actions": [
                                    sv("last", "$input.In.v"),
                                    sv("noOther", "isUndefined($input.Other.x)"),
                                ],
                            },
                        ]
                    },
                }
            ],
        },
    }
    other = {"inputName": "Other", "inputDefinition": {"attributes": [{"jsonPath": "x"}]}}
    v_input = {"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "v"}]}}
    clock = ManualClock()
    engine = DetectorEngine(
        load_detector_model(body),
        [load_input(v_input), load_input(other)],
        InMemoryStateStore(),
        clock,
        _Nothing(),
    )
    engine.put_message("In", {"id": "k", "v": 1})
    engine.put_message("In", {"id": "k", "v": 2})
    engine.put_message("Other", {"id": "j", "x": 7})  # another instance's message
    engine.put_message("In", {"id": "j", "v": 99})  # another instance's message
    clock.advance(60)
    assert engine.tick() == 2
    variables = engine.describe("k")["detector"]["state"]["variables"]
    assert variables == [{"name": "last", "value": "2"}, {"name": "noOther", "value": "true"}]
    variables = engine.describe("j")["detector"]["state"]["variables"]
    assert variables == [{"name": "last", "value": "99"}, {"name": "noOther", "value": "false"}]


class _Keep:
    def __init__(self) -> None:
        self.requests: list[Any] = []

    def execute(self, request: Any) -> None:
        self.requests.append(request)


def test_the_default_payload_state_is_the_state_at_action_time_with_timers_in_epoch_ms() -> None:
    """§4 Default payload: ``stateName`` is the state at action time (the transition's and
    onExit's actions the old state, onEnter's the new one), ``variables`` are typed, and
    ``timers`` maps each running timer to its expiry in epoch milliseconds (Decision)."""
    sns = {"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:alerts"}}

    def sv(name: str, value: str) -> dict[str, Any]:
        return {"setVariable": {"variableName": name, "value": value}}

    body = {
        "detectorModelName": "m",
        "key": "id",
        "roleArn": ROLE,
        "detectorModelDefinition": {
            "initialStateName": "A",
            "states": [
                {
                    "stateName": "A",
                    "onInput": {
                        "events": [
                            {
                                "eventName": "set",
                                "condition": 'currentInput("In")',
                                "actions": [
                                    sv("n", "3"),
                                    sv("d", "2.5"),
                                    sv("s", "'x'"),
                                    sv("b", "true"),
                                    {"setTimer": {"timerName": "hb", "seconds": 90}},
                                ],
                            }
                        ],
                        "transitionEvents": [
                            {
                                "eventName": "go",
                                "condition": 'currentInput("In")',
                                "nextState": "B",
                                "actions": [sns],
                            }
                        ],
                    },
                    "onExit": {"events": [{"eventName": "leaving", "actions": [sns]}]},
                },
                {
                    "stateName": "B",
                    "onEnter": {"events": [{"eventName": "arrived", "actions": [sns]}]},
                },
            ],
        },
    }
    clock = ManualClock(1_558_129_816.42)
    sink = _Keep()
    engine = DetectorEngine(
        load_detector_model(body), [load_input(INPUT)], InMemoryStateStore(), clock, sink
    )
    engine.put_message("In", {"id": "Fulton-A32"}, "00001")
    states = [(r.event_name, r.payload["payload"]["state"]) for r in sink.requests]
    expected = {
        "variables": {"n": 3, "d": 2.5, "s": "x", "b": True},
        "timers": {"hb": 1_558_129_906_420},
    }
    assert states == [
        ("go", {"stateName": "A", **expected}),
        ("leaving", {"stateName": "A", **expected}),
        ("arrived", {"stateName": "B", **expected}),
    ]
    assert [r.payload["eventTime"] for r in sink.requests] == [1_558_129_816_420] * 3


def alarm(**changes: Any) -> Any:
    body: dict[str, Any] = {**ALARM, **changes}
    return load_alarm_model(body)


def rule(prop: str = "$input.BoilerInput.temp", threshold: str = "80") -> dict[str, Any]:
    return {
        "simpleRule": {
            "inputProperty": prop,
            "comparisonOperator": "GREATER",
            "threshold": threshold,
        }
    }


def sms(message: str) -> dict[str, Any]:
    recipient = {"ssoIdentity": {"identityStoreId": "d-123", "userId": "u-1"}}
    lam = {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:notify"}
    config = {"senderId": "PLANT", "additionalMessage": message, "recipients": [recipient]}
    return {
        "notificationActions": [{"action": {"lambdaAction": lam}, "smsConfigurations": [config]}]
    }


def email(message: str) -> dict[str, Any]:
    lam = {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:notify"}
    recipient = {"ssoIdentity": {"identityStoreId": "d-123", "userId": "u-1"}}
    config = {
        "from": "ops@example.com",
        "content": {"subject": "Boiler", "additionalMessage": message},
        "recipients": {"to": [recipient]},
    }
    return {
        "notificationActions": [{"action": {"lambdaAction": lam}, "emailConfigurations": [config]}]
    }


PROP = "$input.BoilerInput.temp"


@pytest.mark.parametrize(
    ("broken", "error", "kept"),
    [
        (
            lambda: alarm(severity=2**31),
            "$.severity: expected an integer 0-2147483647, got 2147483648",
            lambda: alarm(severity=2**31 - 1),
        ),
        (
            lambda: alarm(alarmRule=rule(prop=PROP + " " * (513 - len(PROP)))),
            "$.alarmRule.simpleRule.inputProperty: 513 characters; at most 512 allowed",
            lambda: alarm(alarmRule=rule(prop=PROP + " " * (512 - len(PROP)))),
        ),
        (
            lambda: alarm(alarmRule=rule(threshold="80" + " " * 511)),
            "$.alarmRule.simpleRule.threshold: 513 characters; at most 512 allowed",
            lambda: alarm(alarmRule=rule(threshold="80" + " " * 510)),
        ),
        (
            lambda: alarm(alarmNotification=sms("m" * 201)),
            "smsConfigurations[0].additionalMessage: 201 characters; at most 200 allowed",
            lambda: alarm(alarmNotification=sms("m" * 200)),
        ),
        (
            lambda: alarm(alarmNotification=email("m" * 201)),
            "emailConfigurations[0].content.additionalMessage: 201 characters; at most 200 allowed",
            lambda: alarm(alarmNotification=email("m" * 200)),
        ),
    ],
    ids=[
        "severity 0-2^31-1",
        "inputProperty 512",
        "threshold 512",
        "SMS message 200",
        "email message 200",
    ],
)
def test_alarm_model_limits_refuse_one_past_them(
    broken: Callable[[], Any], error: str, kept: Callable[[], Any]
) -> None:
    """§7: ``inputProperty`` and ``threshold`` expressions at most 512 characters,
    ``severity`` 0 to 2^31-1, an SMS or email ``additionalMessage`` at most 200 characters
    (the API's ``NotificationAdditionalMessage``, the same type for both)."""
    with pytest.raises(DetectorModelError) as info:
        broken()
    assert error in str(info.value)
    kept()


def test_alarm_capabilities_default_to_disabled_on_initialization_and_acknowledge_flow() -> None:
    """§7 Defaults (Decision): with ``alarmCapabilities`` absent a new instance starts
    DISABLED and the acknowledge flow is on; each default holds when only the other
    capability is given."""
    for capabilities in (None, {"acknowledgeFlow": {"enabled": True}}):
        body = {**ALARM} if capabilities is None else {**ALARM, "alarmCapabilities": capabilities}
        engine = AlarmEngine(
            load_alarm_model(body),
            [load_input(BOILER)],
            InMemoryStateStore(),
            ManualClock(),
            _Nothing(),
        )
        engine.put_message("BoilerInput", {"boilerId": "b7", "temp": 95})
        assert engine.state_of("b7") == "DISABLED"
    only_init = {"initializationConfiguration": {"disabledOnInitialization": False}}
    engine = AlarmEngine(
        load_alarm_model({**ALARM, "alarmCapabilities": only_init}),
        [load_input(BOILER)],
        InMemoryStateStore(),
        ManualClock(),
        _Nothing(),
    )
    for temp, state in ((95, "ACTIVE"), (20, "LATCHED"), (95, "ACTIVE"), (20, "LATCHED")):
        engine.put_message("BoilerInput", {"boilerId": "b7", "temp": temp})
        assert engine.state_of("b7") == state  # LATCHED: the acknowledge flow is on
