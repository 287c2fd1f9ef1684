"""Shapes real users' IoT Events models take that AWS accepted, written here from scratch.

Each test reproduces one feature found in public detector models: the model text is ours,
the feature is theirs.
"""

from __future__ import annotations

from typing import Any

import pytest
from detector_models import RecordingSink

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, check_references, load_detector_model, load_input
from edge.clock import ManualClock
from edge.errors import DetectorModelError

LIFECYCLE = {
    "inputName": "Lifecycle",
    "inputDefinition": {"attributes": [{"jsonPath": "clientId"}, {"jsonPath": "eventType"}]},
}


def body(states: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "detectorModelName": "presence",
        "roleArn": "arn:aws:iam::123456789012:role/events",
        "key": "clientId",
        "detectorModelDefinition": {"initialStateName": states[0]["stateName"], "states": states},
        **extra,
    }


def engine(model: Any, clock: ManualClock, sink: RecordingSink) -> DetectorEngine:
    return DetectorEngine(model, [load_input(LIFECYCLE)], InMemoryStateStore(), clock, sink)


# ---- describe-detector-model output and console exports print unset members as null


def test_null_members_count_as_absent_as_aws_json_reads_them() -> None:
    """A timer with ``seconds`` and ``"durationExpression": null`` is a 90 s timer."""
    states = [
        {
            "stateName": "Up",
            "onEnter": {
                "events": [
                    {
                        "eventName": "arm",
                        "condition": None,
                        "actions": [
                            {
                                "setTimer": {
                                    "timerName": "grace",
                                    "seconds": 90,
                                    "durationExpression": None,
                                }
                            },
                            {"sns": {"targetArn": "arn:aws:sns:us-east-1:1:t", "payload": None}},
                        ],
                    }
                ]
            },
            "onInput": {
                "events": [{"eventName": "seen", "condition": 'currentInput("Lifecycle")'}],
                "transitionEvents": [
                    {
                        "eventName": "gone",
                        "condition": 'timeout("grace")',
                        "actions": None,
                        "nextState": "Down",
                    }
                ],
            },
            "onExit": None,
        },
        {"stateName": "Down", "onInput": {"events": None, "transitionEvents": None}},
    ]
    model = load_detector_model(body(states, detectorModelDescription=None))
    clock, sink = ManualClock(), RecordingSink()
    e = engine(model, clock, sink)
    e.put_message("Lifecycle", {"clientId": "c1", "eventType": "connected"})
    clock.advance(89)
    e.tick()
    assert e.describe("c1")["detector"]["state"]["stateName"] == "Up"
    clock.advance(2)
    e.tick()
    assert e.describe("c1")["detector"]["state"]["stateName"] == "Down"


def test_a_null_required_member_is_still_missing() -> None:
    states = [
        {
            "stateName": "Up",
            "onInput": {
                "transitionEvents": [{"eventName": "t", "condition": None, "nextState": "Up"}]
            },
        }
    ]
    with pytest.raises(
        DetectorModelError, match=r"transitionEvents\[0\]: missing required field 'condition'"
    ):
        load_detector_model(body(states))


# ---- an attribute the input does not declare (AWS's own sample reads one)


def test_an_undeclared_attribute_warns_and_reads_undefined() -> None:
    states = [
        {
            "stateName": "Quiet",
            "onInput": {
                "events": [
                    {
                        "eventName": "hot",
                        "condition": "$input.Lifecycle.temp > 30",
                        "actions": [
                            {"setVariable": {"variableName": "t", "value": "$input.Lifecycle.temp"}}
                        ],
                    }
                ],
                "transitionEvents": [
                    {
                        "eventName": "loud",
                        "condition": '$input.Lifecycle.eventType == "disconnected"',
                        "nextState": "Loud",
                    }
                ],
            },
        },
        {"stateName": "Loud"},
    ]
    model = load_detector_model(body(states))
    warnings = check_references(model, [load_input(LIFECYCLE)])
    assert any(
        "Lifecycle.temp is not a declared attribute" in w and "onInput.events[0].condition" in w
        for w in warnings
    )
    clock, sink = ManualClock(), RecordingSink()
    e = engine(model, clock, sink)
    # the message carries temp, but the input does not declare it: undefined at run time
    # (iotevents-contracts §1 Decision), so "hot" never fires
    e.put_message("Lifecycle", {"clientId": "c1", "eventType": "connected", "temp": 31})
    assert e.describe("c1")["detector"]["state"]["variables"] == []
    e.put_message("Lifecycle", {"clientId": "c1", "eventType": "disconnected", "temp": 31})
    assert e.describe("c1")["detector"]["state"]["stateName"] == "Loud"


def test_an_unknown_input_is_still_an_error() -> None:
    states = [
        {
            "stateName": "S",
            "onInput": {"events": [{"eventName": "e", "condition": "$input.Nope.x > 1"}]},
        }
    ]
    model = load_detector_model(body(states))
    with pytest.raises(DetectorModelError, match="unknown input 'Nope'"):
        check_references(model, [load_input(LIFECYCLE)])


# ---- SERIAL: an event re-arms the timer whose expiry is being evaluated, then a transition
# ---- tests timeout() (a presence model: the persisted "disconnected" input re-arms it)


def grace_model(check: bool) -> Any:
    transitions = [{"eventName": "gone", "condition": 'timeout("grace")', "nextState": "Down"}]
    states = [
        {
            "stateName": "Up",
            "onInput": {
                "events": [
                    {
                        "eventName": "dropped",
                        "condition": '$input.Lifecycle.eventType == "disconnected"',
                        "actions": [{"setTimer": {"timerName": "grace", "seconds": 60}}],
                    }
                ],
                "transitionEvents": transitions if check else [],
            },
        },
        {"stateName": "Down"},
    ]
    if not check:
        states[0]["onInput"]["transitionEvents"] = [
            {
                "eventName": "gone",
                "condition": 'currentInput("Lifecycle") && timeout("grace")',
                "nextState": "Down",
            }
        ]
    return load_detector_model(body(states, evaluationMethod="SERIAL"))


def test_timeout_holds_for_its_own_expiry_even_after_a_serial_event_rearms_the_timer() -> None:
    clock, sink = ManualClock(), RecordingSink()
    e = engine(grace_model(check=True), clock, sink)
    e.put_message("Lifecycle", {"clientId": "c1", "eventType": "disconnected"})
    clock.advance(60)
    assert e.tick() == 1
    assert e.describe("c1")["detector"]["state"]["stateName"] == "Down"


def test_timeout_holds_for_its_own_expiry_after_a_serial_event_resets_the_timer() -> None:
    """The same with ``resetTimer`` (the engine passes the trigger on both)."""
    arm = {
        "eventName": "arm",
        "condition": "isUndefined($variable.armed)",
        "actions": [
            {"setTimer": {"timerName": "grace", "seconds": 60}},
            {"setVariable": {"variableName": "armed", "value": "1"}},
        ],
    }
    dropped = {
        "eventName": "dropped",
        "condition": '$input.Lifecycle.eventType == "disconnected"',
        "actions": [{"resetTimer": {"timerName": "grace"}}],
    }
    gone = {"eventName": "gone", "condition": 'timeout("grace")', "nextState": "Down"}
    states = [
        {"stateName": "Up", "onInput": {"events": [arm, dropped], "transitionEvents": [gone]}},
        {"stateName": "Down"},
    ]
    clock, sink = ManualClock(), RecordingSink()
    e = engine(load_detector_model(body(states, evaluationMethod="SERIAL")), clock, sink)
    e.put_message("Lifecycle", {"clientId": "c1", "eventType": "disconnected"})
    clock.advance(60)
    assert e.tick() == 1
    assert e.describe("c1")["detector"]["state"]["stateName"] == "Down"


def test_an_expiry_not_checked_before_the_timer_is_rearmed_does_not_leak_to_later() -> None:
    clock, sink = ManualClock(), RecordingSink()
    e = engine(grace_model(check=False), clock, sink)
    e.put_message("Lifecycle", {"clientId": "c1", "eventType": "disconnected"})
    clock.advance(60)
    assert e.tick() == 1  # re-armed by "dropped", nothing checked timeout() on the expiry
    clock.advance(10)
    e.put_message("Lifecycle", {"clientId": "c1", "eventType": "connected"})
    assert e.describe("c1")["detector"]["state"]["stateName"] == "Up"


# ---- alarm models on SiteWise data (L4E scores in SiteWise): AWS takes them, plantwatch says
# ---- what it lacks and what to do instead


def test_a_sitewise_reference_says_plantwatch_has_no_sitewise_and_what_to_do() -> None:
    from cloud.detectors.alarms.model import load_alarm_model

    alarm = {
        "alarmModelName": "scoreHigh",
        "roleArn": "arn:aws:iam::123456789012:role/events",
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$sitewise.assetModel.`m-1`.`p-1`.propertyValue.value",
                "comparisonOperator": "GREATER_OR_EQUAL",
                "threshold": "0.8",
            }
        },
    }
    with pytest.raises(DetectorModelError) as info:
        load_alarm_model(alarm, source="alarm.json")
    message = str(info.value)
    assert message.startswith("alarm.json: $.alarmRule.simpleRule.inputProperty: '$sitewise'")
    assert "no SiteWise" in message and "$input.<Input>.<path>" in message
    assert "\n" not in message


# ---- a template or describe output given to `validate` says which command takes it


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"Resources": {"M": {"Type": "AWS::IoTEvents::DetectorModel"}}}, "$.Resources"),
        ({"detectorModel": {"detectorModelDefinition": {}}}, "$.detectorModel"),
        ({"alarmModelName": "a", "alarmModelArn": "arn:aws:iotevents:::a"}, "$.alarmModelArn"),
    ],
)
def test_a_wrapped_model_names_the_import_command(document: dict[str, Any], where: str) -> None:
    from cloud.detectors.alarms.model import load_alarm_model

    for load in (load_detector_model, load_alarm_model):
        with pytest.raises(DetectorModelError) as info:
            load(document, source="m.json")
        assert str(info.value).startswith(f"m.json: {where}: ")
        assert "plantwatch import iotevents FOLDER" in str(info.value)


def test_a_model_of_the_other_kind_names_the_command_that_takes_it() -> None:
    """An alarm model given where a detector model goes (and the reverse) is a model of
    the other kind, not a model with an unknown field: the error says which command
    validates it."""
    from cloud.detectors.alarms.model import load_alarm_model

    alarm = {
        "alarmModelName": "boilerHigh",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$input.BoilerInput.temp",
                "comparisonOperator": "GREATER",
                "threshold": "80",
            }
        },
    }
    detector = {
        "detectorModelName": "m",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "detectorModelDefinition": {"initialStateName": "S", "states": [{"stateName": "S"}]},
    }
    for load, body, where, command in (
        (load_detector_model, alarm, "$.alarmModelName", "plantwatch alarms validate"),
        (load_alarm_model, detector, "$.detectorModelName", "plantwatch detectors validate"),
    ):
        with pytest.raises(DetectorModelError) as info:
            load(body, source="m.json")
        assert str(info.value).startswith(f"m.json: {where}: ")
        assert command in str(info.value) and "unknown field" not in str(info.value)


NESTED = {
    "inputName": "Pump",
    "inputDefinition": {
        "attributes": [{"jsonPath": "id"}, {"jsonPath": "motor"}, {"jsonPath": "sensor.pressure"}]
    },
}


@pytest.mark.parametrize(
    ("expression", "defined"),
    [
        ("$input.Pump.motor.rpm", True),  # below an attribute declared whole
        ("$input.Pump.motor", True),
        ("$input.Pump.sensor.pressure", True),
        ("$input.Pump.sensor.temp", False),  # beside a declared path, not below one
        ("$input.Pump.extra", False),
    ],
)
def test_only_declared_attributes_and_paths_below_them_are_defined(
    expression: str, defined: bool
) -> None:
    states = [
        {
            "stateName": "S",
            "onInput": {
                "events": [
                    {
                        "eventName": "seen",
                        "condition": f"!isUndefined({expression})",
                        "actions": [{"setVariable": {"variableName": "seen", "value": "1"}}],
                    }
                ]
            },
        }
    ]
    model = load_detector_model(body(states, key="id"))
    e = DetectorEngine(
        model, [load_input(NESTED)], InMemoryStateStore(), ManualClock(), RecordingSink()
    )
    message = {
        "id": "p1",
        "motor": {"rpm": 1500},
        "sensor": {"pressure": 2, "temp": 40},
        "extra": 1,
    }
    e.put_message("Pump", message)
    variables = e.describe("p1")["detector"]["state"]["variables"]
    assert (variables == [{"name": "seen", "value": "1"}]) is defined
