"""Detector models published by AWS and in public samples, restated, loaded strictly and run.

Each model is written out as its source has it (the source is cited above it) and driven
through the message sequence its source describes; the test checks where the detector ends
up, its variables and the actions it asked for. Where a source leaves out a member
CreateDetectorModel needs (the console templates of the developer guide have no ``roleArn``)
the restatement adds it, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from detector_models import ROLE_ARN, RecordingSink

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, check_references, load_detector_model, load_input
from edge.clock import ManualClock

Step = tuple[str, Any] | tuple[str, str, dict[str, Any]]
"""``("wait", seconds)`` advances the clock a second at a time, running due timers; ``("msg", input, payload)``
sends a message."""


def inputs(*specs: tuple[str, Sequence[str]]) -> list[dict[str, Any]]:
    """CreateInput bodies: ``(name, [jsonPath, ...])``."""
    return [
        {"inputName": name, "inputDefinition": {"attributes": [{"jsonPath": p} for p in paths]}}
        for name, paths in specs
    ]


class Run:
    """A model loaded strictly, its references checked, and an engine running it."""

    def __init__(self, body: dict[str, Any], input_bodies: list[dict[str, Any]]) -> None:
        self.model = load_detector_model(body, strict=True)
        loaded = [load_input(b) for b in input_bodies]
        self.warnings = check_references(self.model, loaded)
        self.clock, self.sink = ManualClock(), RecordingSink()
        self.engine = DetectorEngine(
            self.model, loaded, InMemoryStateStore(), self.clock, self.sink
        )

    def play(self, steps: Sequence[Step]) -> Run:
        for step in steps:
            if step[0] == "wait":
                for _ in range(step[1]):  # second by second: a re-armed timer fires again
                    self.clock.advance(1)
                    self.engine.tick()
            else:
                self.engine.put_message(step[1], step[2])  # type: ignore[misc]
        return self

    def state(self, key: str | None = None) -> str:
        return self.engine.describe(key)["detector"]["state"]["stateName"]

    def variables(self, key: str | None = None) -> dict[str, str]:
        found = self.engine.describe(key)["detector"]["state"]["variables"]
        return {v["name"]: v["value"] for v in found}

    def actions(self) -> list[tuple[str, str]]:
        """``(kind, event name)`` of every action asked for, in order."""
        return [(r.kind, r.event_name) for r in self.sink.requests]


# ---- 1. github.com/dave-malone/aws-iot-events-device-connectivity-status-demo,
# ---- ConnectivityStatusMonitorModel.json (its input: lifecycle-event.json)

_CONNECTED = '$input.lifecycle_event.eventType == "connected"'
_DISCONNECTED = '$input.lifecycle_event.eventType == "disconnected"'


def _count(variable: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": variable, "value": f"$variable.{variable} + 1"}}


def _connected_events(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    status = {"setVariable": {"variableName": "deviceStatus", "value": '"connected"'}}
    return [
        {
            "eventName": "connectedEvent",
            "condition": _CONNECTED,
            "actions": [status, *extra, _count("connectEvents")],
        },
    ]


CONNECTIVITY = {
    "detectorModelDefinition": {
        "states": [
            {
                "stateName": "Notify",
                "onInput": {
                    "events": [
                        *_connected_events(),
                        {
                            "eventName": "disconnectEvent",
                            "condition": _DISCONNECTED,
                            "actions": [_count("disconnectEvents")],
                        },
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "Go_Online",
                            "condition": '$variable.deviceStatus == "connected"',
                            "actions": [],
                            "nextState": "Normal",
                        }
                    ],
                },
                "onEnter": {
                    "events": [
                        {
                            "eventName": "snsNotification",
                            "condition": "true",
                            "actions": [
                                {
                                    "sns": {
                                        "targetArn": "arn:aws:sns:us-east-1:000000000000:"
                                        "connectivity-status-notifications"
                                    }
                                }
                            ],
                        }
                    ]
                },
                "onExit": {"events": []},
            },
            {
                "stateName": "Offline",
                "onInput": {
                    "events": [
                        *_connected_events(),
                        {
                            "eventName": "disconnectEvent",
                            "condition": _DISCONNECTED,
                            "actions": [_count("disconnectEvents")],
                        },
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "Go_Online",
                            "condition": '$variable.deviceStatus == "connected"',
                            "actions": [{"clearTimer": {"timerName": "disconnectAlertTimer"}}],
                            "nextState": "Normal",
                        },
                        {
                            "eventName": "Go_Notify",
                            "condition": 'timeout("disconnectAlertTimer")',
                            "actions": [{"clearTimer": {"timerName": "disconnectAlertTimer"}}],
                            "nextState": "Notify",
                        },
                    ],
                },
                "onEnter": {
                    "events": [
                        {
                            "eventName": "init",
                            "condition": "true",
                            "actions": [
                                {
                                    "setTimer": {
                                        "timerName": "disconnectAlertTimer",
                                        "seconds": 60,
                                        "durationExpression": None,
                                    }
                                }
                            ],
                        }
                    ]
                },
                "onExit": {"events": []},
            },
            {
                "stateName": "Normal",
                "onInput": {
                    "events": [
                        *_connected_events({"clearTimer": {"timerName": "disconnectTimer"}}),
                        {
                            "eventName": "disconnectedEvent",
                            "condition": _DISCONNECTED,
                            "actions": [
                                {
                                    "setTimer": {
                                        "timerName": "disconnectTimer",
                                        "seconds": 60,
                                        "durationExpression": None,
                                    }
                                },
                                _count("disconnectEvents"),
                            ],
                        },
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "Go_Offline",
                            "condition": 'timeout("disconnectTimer")',
                            "actions": [
                                {
                                    "setVariable": {
                                        "variableName": "deviceStatus",
                                        "value": '"disconnected"',
                                    }
                                },
                                {"clearTimer": {"timerName": "disconnectTimer"}},
                            ],
                            "nextState": "Offline",
                        }
                    ],
                },
                "onEnter": {
                    "events": [
                        {
                            "eventName": "init",
                            "condition": "isUndefined($variable.deviceStatus)",
                            "actions": [
                                {
                                    "setVariable": {
                                        "variableName": "deviceStatus",
                                        "value": '"unknown"',
                                    }
                                },
                                {"setVariable": {"variableName": "connectEvents", "value": "0"}},
                                {
                                    "setVariable": {
                                        "variableName": "disconnectEvents",
                                        "value": "0",
                                    }
                                },
                            ],
                        }
                    ]
                },
                "onExit": {"events": []},
            },
        ],
        "initialStateName": "Normal",
    },
    "detectorModelDescription": None,
    "detectorModelName": "ConnectivityStatusMonitorModel",
    "evaluationMethod": "SERIAL",
    "key": "clientId",
    "roleArn": "arn:aws:iam::000000000000:role/service-role/ConnectivityStatusMonitorModelRole",
}
LIFECYCLE = inputs(("lifecycle_event", ["clientId", "eventType"]))


def _lifecycle(event_type: str) -> Step:
    return ("msg", "lifecycle_event", {"clientId": "dev-1", "eventType": event_type})


def test_connectivity_monitor_rides_out_a_short_drop() -> None:
    run = Run(CONNECTIVITY, LIFECYCLE).play(
        [_lifecycle("connected"), _lifecycle("disconnected"), ("wait", 30)]
    )
    run.play([_lifecycle("connected"), ("wait", 60)])
    assert run.state("dev-1") == "Normal"
    assert run.variables("dev-1") == {
        "connectEvents": "2",
        "deviceStatus": '"connected"',
        "disconnectEvents": "1",
    }
    assert run.actions() == []


def test_connectivity_monitor_notifies_after_two_minutes_offline_then_recovers() -> None:
    run = Run(CONNECTIVITY, LIFECYCLE).play([_lifecycle("connected"), _lifecycle("disconnected")])
    run.play([("wait", 60)])
    assert run.state("dev-1") == "Offline"
    run.play([("wait", 60)])
    assert run.state("dev-1") == "Notify"
    assert run.actions() == [("sns", "snsNotification")]
    run.play([_lifecycle("connected")])
    assert run.state("dev-1") == "Normal"
    assert run.variables("dev-1")["deviceStatus"] == '"connected"'


# ---- 2. AWS IoT Events developer guide, "Device HeartBeat" (a console template):
# ---- github.com/awsdocs/aws-iot-events-developer-guide developerguide/iotevents-examples-dhb.md
# ---- (restated with a roleArn, which the template leaves to the console)

HEARTBEAT = {
    "detectorModelName": "DeviceHeartBeat",
    "roleArn": ROLE_ARN,
    "detectorModelDefinition": {
        "states": [
            {
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "To_normal",
                            "actions": [],
                            "condition": "$input.AWS_IoTEvents_Blueprints_Heartbeat_Input.value > 0",
                            "nextState": "Normal",
                        }
                    ],
                    "events": [],
                },
                "stateName": "Offline",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "Send_notification",
                            "actions": [
                                {"sns": {"targetArn": "arn:aws:sns:us-west-2:123456789012:Offline"}}
                            ],
                            "condition": "true",
                        }
                    ]
                },
                "onExit": {"events": []},
            },
            {
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "Go_offline",
                            "actions": [],
                            "condition": 'timeout("awake")',
                            "nextState": "Offline",
                        }
                    ],
                    "events": [
                        {
                            "eventName": "Reset_timer",
                            "actions": [{"resetTimer": {"timerName": "awake"}}],
                            "condition": "true",
                        }
                    ],
                },
                "stateName": "Normal",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "Create_timer",
                            "actions": [{"setTimer": {"seconds": 300, "timerName": "awake"}}],
                            "condition": "$input.AWS_IoTEvents_Blueprints_Heartbeat_Input.value > 0",
                        }
                    ]
                },
                "onExit": {"events": []},
            },
        ],
        "initialStateName": "Normal",
    },
}
HEARTBEAT_INPUT = inputs(("AWS_IoTEvents_Blueprints_Heartbeat_Input", ["value"]))


def _beat(value: int = 1) -> Step:
    return ("msg", "AWS_IoTEvents_Blueprints_Heartbeat_Input", {"value": value})


def test_heartbeat_stays_normal_while_beats_come_within_five_minutes() -> None:
    run = Run(HEARTBEAT, HEARTBEAT_INPUT).play([_beat(), ("wait", 240), _beat(), ("wait", 240)])
    assert run.state() == "Normal"
    assert run.actions() == []


def test_heartbeat_goes_offline_and_notifies_then_a_beat_brings_it_back() -> None:
    run = Run(HEARTBEAT, HEARTBEAT_INPUT).play([_beat(), ("wait", 300)])
    assert run.state() == "Offline"
    assert run.actions() == [("sns", "Send_notification")]
    run.play([_beat(0)])
    assert run.state() == "Offline"
    run.play([_beat(5), ("wait", 299)])
    assert run.state() == "Normal"
    run.play([("wait", 1)])
    assert run.state() == "Offline"


# ---- 3. AWS IoT Events developer guide, "Event Detection With Sensors and Applications"
# ---- (a console template): github.com/awsdocs/aws-iot-events-developer-guide
# ---- developerguide/iotevents-examples-edwsaa.md (restated with a roleArn)

_DEVICE = "$input.AWS_IoTEvents_Blueprints_Tracking_DeviceInput"
TRACKING = {
    "detectorModelName": "EventDetectionSensorsAndApplications",
    "roleArn": ROLE_ARN,
    "detectorModelDefinition": {
        "states": [
            {
                "onInput": {"transitionEvents": [], "events": []},
                "stateName": "Device_exception",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "Send_mqtt",
                            "actions": [{"iotTopicPublish": {"mqttTopic": "Device_stolen"}}],
                            "condition": "true",
                        }
                    ]
                },
                "onExit": {"events": []},
            },
            {
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "To_in_use",
                            "actions": [],
                            "condition": f"$variable.position != {_DEVICE}.gps_position",
                            "nextState": "Device_in_use",
                        }
                    ],
                    "events": [],
                },
                "stateName": "Device_idle",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "Set_position",
                            "actions": [
                                {
                                    "setVariable": {
                                        "variableName": "position",
                                        "value": f"{_DEVICE}.gps_position",
                                    }
                                }
                            ],
                            "condition": "true",
                        }
                    ]
                },
                "onExit": {"events": []},
            },
            {
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "To_exception",
                            "actions": [],
                            "condition": "$input.AWS_IoTEvents_Blueprints_Tracking_UserInput"
                            f".device_id != {_DEVICE}.device_id",
                            "nextState": "Device_exception",
                        }
                    ],
                    "events": [],
                },
                "stateName": "Device_in_use",
                "onEnter": {"events": []},
                "onExit": {"events": []},
            },
        ],
        "initialStateName": "Device_idle",
    },
}
TRACKING_INPUTS = inputs(
    ("AWS_IoTEvents_Blueprints_Tracking_DeviceInput", ["device_id", "gps_position"]),
    ("AWS_IoTEvents_Blueprints_Tracking_UserInput", ["device_id"]),
)


def test_tracking_template_flags_a_device_moved_by_someone_else() -> None:
    """The first reading creates the detector: the idle state's onEnter keeps its position,
    and a reading elsewhere means the device is in use; a user holding another device id
    while it moves (the user input's last value against the device's) is an exception."""
    device = "AWS_IoTEvents_Blueprints_Tracking_DeviceInput"
    run = Run(TRACKING, TRACKING_INPUTS).play(
        [("msg", device, {"device_id": "d1", "gps_position": "47.6,-122.3"})]
    )
    assert (run.state(), run.variables()) == ("Device_idle", {"position": '"47.6,-122.3"'})
    run.play([("msg", device, {"device_id": "d1", "gps_position": "47.6,-122.3"})])
    assert run.state() == "Device_idle"
    run.play([("msg", device, {"device_id": "d1", "gps_position": "47.7,-122.3"})])
    assert run.state() == "Device_in_use"
    run.play([("msg", "AWS_IoTEvents_Blueprints_Tracking_UserInput", {"device_id": "d1"})])
    assert run.state() == "Device_in_use"
    run.play([("msg", "AWS_IoTEvents_Blueprints_Tracking_UserInput", {"device_id": "d9"})])
    assert run.state() == "Device_exception"
    assert run.actions() == [("iotTopicPublish", "Send_mqtt")]
    assert run.sink.requests[0].target["mqttTopic"] == "Device_stolen"


# ---- 4. github.com/aws-samples/aws-iot-events-detection-sample lib/event-backend-stack.ts
# ---- (its CfnDetectorModel; the stack prefix written as "Stack", the Lambda ARNs filled in).
# ---- Its conditions read $input.<Input>.temp, which its CfnInput does not declare: AWS
# ---- reads it undefined (iotevents-contracts §1), so the restatement declares it

_IN = "$input.StackInput"
_SMS = "arn:aws:lambda:us-east-1:111111111111:function:StackSmsPinpoint"
_CALL = "arn:aws:lambda:us-east-1:111111111111:function:StackCallPinpoint"


def _set(name: str, value: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": name, "value": value}}


STORE_MONITOR = {
    "detectorModelName": "StackDetectorModel",
    "roleArn": ROLE_ARN,
    "evaluationMethod": "SERIAL",
    "key": "id",
    "detectorModelDefinition": {
        "initialStateName": "Normal",
        "states": [
            {
                "stateName": "Normal",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "Init",
                            "condition": "true",
                            "actions": [
                                _set("temp_breached_count", "0"),
                                _set("threshold_value", "29"),
                                _set("store", f"{_IN}.store"),
                                _set("sensor", f"{_IN}.id"),
                            ],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {"eventName": "CreateConfigVariables", "condition": "true", "actions": []}
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "ChangeToWarning",
                            "condition": f"{_IN}.temp > $variable.threshold_value",
                            "actions": [],
                            "nextState": "Warning",
                        }
                    ],
                },
            },
            {
                "stateName": "Warning",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "HighTempCounter",
                            "condition": "true",
                            "actions": [{"setTimer": {"timerName": "warningTime", "seconds": 600}}],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "HighTempCounter",
                            "condition": f"{_IN}.temp > $variable.threshold_value",
                            "actions": [
                                _set("temp_breached_count", "$variable.temp_breached_count + 1")
                            ],
                        }
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "WarnToHighTemp",
                            "condition": "$variable.temp_breached_count >= 2",
                            "nextState": "HighTemp",
                            "actions": [{"clearTimer": {"timerName": "warningTime"}}],
                        },
                        {
                            "eventName": "WarnToNormal",
                            "condition": 'timeout("warningTime") && '
                            "$variable.temp_breached_count < 2",
                            "nextState": "Normal",
                        },
                    ],
                },
            },
            {
                "stateName": "HighTemp",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "AlarmSMS",
                            "condition": "true",
                            "actions": [
                                {"lambda": {"functionArn": _SMS}},
                                {"setTimer": {"timerName": "unacknowledgeTime", "seconds": 300}},
                            ],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "SetAckStatus",
                            "condition": f'{_IN}.ack_status == "true"',
                            "actions": [_set("ack_status", f"{_IN}.ack_status")],
                        },
                        {
                            "eventName": "EscalatedOnCall",
                            "condition": 'timeout("unacknowledgeTime")',
                            "actions": [{"lambda": {"functionArn": _CALL}}],
                        },
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "HighTempToResetNormal",
                            "condition": f'{_IN}.command == "reset"',
                            "nextState": "Normal",
                            "actions": [{"clearTimer": {"timerName": "unacknowledgeTime"}}],
                        },
                        {
                            "eventName": "HighTempToAckSnooze",
                            "condition": f'{_IN}.command == "ack" && $variable.ack_active != "true"',
                            "nextState": "Snooze",
                            "actions": [{"clearTimer": {"timerName": "unacknowledgeTime"}}],
                        },
                    ],
                },
            },
            {
                "stateName": "Snooze",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "SnoozeTimer",
                            "condition": "true",
                            "actions": [
                                _set("ack_active", "1"),
                                {"setTimer": {"timerName": "snoozeTime", "seconds": 120}},
                            ],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "SetSnoozeAck",
                            "condition": 'timeout("snoozeTime")',
                            "actions": [_set("ack_active", "0")],
                        }
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "SnoozeToResetNormal",
                            "condition": f'{_IN}.command == "reset"',
                            "nextState": "Normal",
                            "actions": [
                                {"clearTimer": {"timerName": "snoozeTime"}},
                                _set("ack_status", "false"),
                            ],
                        },
                        {
                            "eventName": "SnoozeToNormal",
                            "condition": f"{_IN}.temp < $variable.threshold_value && "
                            "$variable.ack_active == 0",
                            "nextState": "Normal",
                            "actions": [_set("ack_status", "false")],
                        },
                        {
                            "eventName": "SnoozeToHighTemp",
                            "condition": 'timeout("snoozeTime") && $variable.ack_active == 0',
                            "nextState": "HighTemp",
                            "actions": [_set("ack_status", "false")],
                        },
                    ],
                },
            },
        ],
    },
}
STORE_INPUT = inputs(
    ("StackInput", ["id", "name", "store", "room", "loc", "command", "ack_status", "temp"])
)


def _reading(temp: float, command: str = "none", **extra: Any) -> Step:
    body = {"id": "001", "name": "thing", "store": "younge", "room": "01", "loc": "TO"}
    return ("msg", "StackInput", {**body, "command": command, "temp": temp, **extra})


def test_store_monitor_escalates_a_lasting_high_temperature_and_snoozes_on_ack() -> None:
    run = Run(STORE_MONITOR, STORE_INPUT).play([_reading(20)])
    assert run.state("001") == "Normal"
    assert run.variables("001") == {
        "sensor": '"001"',
        "store": '"younge"',
        "temp_breached_count": "0",
        "threshold_value": "29",
    }
    run.play([_reading(31), _reading(32)])
    assert run.state("001") == "Warning"
    run.play([_reading(33)])
    assert run.state("001") == "HighTemp"
    assert run.actions() == [("lambda", "AlarmSMS")]
    run.play([("wait", 300)])  # nobody acknowledged: on-call is called
    assert run.actions()[-1] == ("lambda", "EscalatedOnCall")
    run.play([_reading(33, "ack")])
    assert run.state("001") == "Snooze"
    run.play([("wait", 120)])
    assert run.state("001") == "HighTemp"  # still hot when the snooze ran out
    run.play([_reading(20, "reset")])
    assert run.state("001") == "Normal"


def test_store_monitor_warning_lapses_back_to_normal() -> None:
    run = Run(STORE_MONITOR, STORE_INPUT).play([_reading(20), _reading(31), ("wait", 600)])
    assert run.state("001") == "Normal"
    assert run.actions() == []


# ---- 5. github.com/aws-samples/aws-iot-events-accelerators
# ---- integratingmachinelearning/cfn/lambda_functions/create_detector.py (its inputs and
# ---- IoTImlDetectorModel; the SNS topic and role the stack passes in filled in)

_PUMP_SNS = "arn:aws:sns:us-east-1:111111111111:IoTEventsDetectorSNSEmail"


def _service_state(name: str, notice: str) -> dict[str, Any]:
    return {
        "stateName": name,
        "onInput": {
            "events": [],
            "transitionEvents": [
                {
                    "eventName": "service_complete",
                    "condition": "$input.IoTImlPumpAction.service_complete == 1",
                    "actions": [_set("operation_minutes", "0")],
                    "nextState": "motor_off",
                }
            ],
        },
        "onEnter": {
            "events": [
                {
                    "eventName": notice,
                    "condition": "true",
                    "actions": [{"sns": {"targetArn": _PUMP_SNS}}],
                }
            ]
        },
        "onExit": {"events": []},
    }


PUMP = {
    "detectorModelName": "IoTImlDetectorModel",
    "detectorModelDescription": "Detector Model for IoT Interactive Machine Learning",
    "key": "motorID",
    "roleArn": ROLE_ARN,
    "detectorModelDefinition": {
        "states": [
            {
                "stateName": "initialize",
                "onInput": {
                    "events": [],
                    "transitionEvents": [
                        {
                            "eventName": "init_complete",
                            "condition": "true",
                            "actions": [_set("operation_minutes", "0")],
                            "nextState": "motor_off",
                        }
                    ],
                },
                "onEnter": {"events": []},
                "onExit": {"events": []},
            },
            {
                "stateName": "motor_off",
                "onInput": {
                    "events": [],
                    "transitionEvents": [
                        {
                            "eventName": "motor_start",
                            "condition": "$input.IoTImlPumpData.TT01 > 10",
                            "actions": [
                                {"setTimer": {"timerName": "motorOperationDuration", "seconds": 60}}
                            ],
                            "nextState": "motor_on",
                        }
                    ],
                },
                "onEnter": {"events": []},
                "onExit": {"events": []},
            },
            {
                "stateName": "motor_on",
                "onInput": {
                    "events": [
                        {
                            "eventName": "timer_expired",
                            "condition": "timeout('motorOperationDuration')",
                            "actions": [
                                _set("operation_minutes", "$variable.operation_minutes+1"),
                                {"resetTimer": {"timerName": "motorOperationDuration"}},
                            ],
                        },
                        {
                            "eventName": "temperature_normal",
                            "condition": "$input.IoTImlPumpData.FT01 <= 200",
                            "actions": [
                                {"clearTimer": {"timerName": "motortemperatureHigh"}},
                                _set("high_temperature_timer_state", "0"),
                            ],
                        },
                        {
                            "eventName": "temperature_high",
                            "condition": "$input.IoTImlPumpData.FT01 > 200 && "
                            "$variable.high_temperature_timer_state == 0",
                            "actions": [
                                {"resetTimer": {"timerName": "motortemperatureHigh"}},
                                _set("high_temperature_timer_state", "1"),
                            ],
                        },
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "motor_stop",
                            "condition": "$input.IoTImlPumpData.TT01 <= 10",
                            "actions": [_set("operation_minutes", "$variable.operation_minutes+1")],
                            "nextState": "motor_off",
                        },
                        {
                            "eventName": "runtime_exceeded",
                            "condition": "$variable.operation_minutes > 6000",
                            "actions": [],
                            "nextState": "scheduled_service",
                        },
                        {
                            "eventName": "failure_predicted",
                            "condition": "$input.IoTImlPumpInference.prediction == 1",
                            "actions": [],
                            "nextState": "likely_failure_24hrs",
                        },
                        {
                            "eventName": "threshold_breach",
                            "condition": "timeout('motortemperatureHigh')",
                            "actions": [],
                            "nextState": "high_temperature",
                        },
                    ],
                },
                "onEnter": {
                    "events": [
                        {
                            "eventName": "high_temperature_timer",
                            "condition": "true",
                            "actions": [
                                {"setTimer": {"timerName": "motortemperatureHigh", "seconds": 300}},
                                _set("high_temperature_timer_state", "1"),
                            ],
                        }
                    ]
                },
                "onExit": {
                    "events": [
                        {
                            "eventName": "clear_timer",
                            "condition": "true",
                            "actions": [{"clearTimer": {"timerName": "motorOperationDuration"}}],
                        }
                    ]
                },
            },
            _service_state("scheduled_service", "scheduled_service_sns"),
            _service_state("high_temperature", "high_temperature_sns"),
            _service_state("likely_failure_24hrs", "likely_failure_24hrs_sns"),
        ],
        "initialStateName": "initialize",
    },
}
_TT = [f"TT{i:02d}" for i in range(1, 11)]
PUMP_INPUTS = inputs(
    ("IoTImlPumpData", ["motorType", "motorID", *_TT, "PT01", "FT01"]),
    ("IoTImlPumpAction", ["motorType", "motorID", "service_complete"]),
    ("IoTImlPumpInference", ["motorType", "motorID", "prediction"]),
)


def _pump(tt01: float, ft01: float) -> Step:
    return (
        "msg",
        "IoTImlPumpData",
        {"motorType": "A", "motorID": "m1", "TT01": tt01, "FT01": ft01},
    )


def test_pump_counts_minutes_on_and_calls_service_after_five_hot_minutes() -> None:
    run = Run(PUMP, PUMP_INPUTS).play([_pump(5, 100)])
    assert run.state("m1") == "motor_off"
    run.play([_pump(20, 250), ("wait", 250)])
    assert run.state("m1") == "motor_on"
    assert run.variables("m1")["operation_minutes"] == "4"
    run.play([("wait", 50)])
    assert run.state("m1") == "high_temperature"
    assert run.actions() == [("sns", "high_temperature_sns")]
    run.play([("msg", "IoTImlPumpAction", {"motorID": "m1", "service_complete": 1})])
    assert (run.state("m1"), run.variables("m1")["operation_minutes"]) == ("motor_off", "0")


def test_pump_stops_and_a_predicted_failure_asks_for_service() -> None:
    run = Run(PUMP, PUMP_INPUTS).play([_pump(5, 100), _pump(20, 100), ("wait", 60), _pump(5, 100)])
    assert (run.state("m1"), run.variables("m1")["operation_minutes"]) == ("motor_off", "2")
    run.play([_pump(20, 100), ("msg", "IoTImlPumpInference", {"motorID": "m1", "prediction": 1})])
    assert run.state("m1") == "likely_failure_24hrs"
    assert run.actions() == [("sns", "likely_failure_24hrs_sns")]
