"""Detector models published by AWS and in public samples, restated, loaded strictly and run.

Sixteen models: nine restated here, seven the guide's own from ``data/aws_examples``. Each
model is written out as its source has it (the source is cited above it) and driven
through the message sequence its source describes; the test checks where the detector ends
up, its variables and the actions it asked for. Where a source leaves out a member
CreateDetectorModel needs (the console templates of the developer guide have no ``roleArn``)
the restatement adds it, and says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
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


# ---- 6. github.com/aws/aws-cdk packages/@aws-cdk/aws-iotevents-alpha/test/
# ---- integ.detector-model.ts, as the construct writes it out (transitions named
# ---- "<from>_to_<to>", an event without actions has none)

_TEMP = "$input.test_input.payload.temperature"
CDK_ONLINE = {
    "detectorModelName": "test-detector-model",
    "detectorModelDescription": "test-detector-model-description",
    "evaluationMethod": "SERIAL",
    "key": "payload.deviceId",
    "roleArn": ROLE_ARN,
    "detectorModelDefinition": {
        "initialStateName": "online",
        "states": [
            {
                "stateName": "online",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "test-event",
                            "condition": f'currentInput("test_input") && {_TEMP} == 31.5',
                        }
                    ]
                },
                "onInput": {
                    "events": [{"eventName": "test-input-event", "condition": f"{_TEMP} == 31.6"}],
                    "transitionEvents": [
                        {
                            "eventName": "online_to_offline",
                            "condition": f"{_TEMP} == 12",
                            "nextState": "offline",
                        }
                    ],
                },
                "onExit": {
                    "events": [{"eventName": "test-exit-event", "condition": f"{_TEMP} == 31.7"}]
                },
            },
            {
                "stateName": "offline",
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "offline_to_online",
                            "condition": f"{_TEMP} == 21",
                            "nextState": "online",
                        }
                    ]
                },
            },
        ],
    },
}
CDK_INPUT = inputs(("test_input", ["payload.deviceId", "payload.temperature"]))


def _cdk(device: str, temperature: float) -> Step:
    return ("msg", "test_input", {"payload": {"deviceId": device, "temperature": temperature}})


def test_cdk_detector_model_keys_on_a_nested_path_and_switches_on_exact_readings() -> None:
    run = Run(CDK_ONLINE, CDK_INPUT).play([_cdk("a", 31.5), _cdk("b", 20), _cdk("a", 12)])
    assert (run.state("a"), run.state("b")) == ("offline", "online")
    run.play([_cdk("a", 20), _cdk("b", 12.0)])
    assert (run.state("a"), run.state("b")) == ("offline", "offline")
    run.play([_cdk("a", 21.0)])
    assert run.state("a") == "online"
    assert run.actions() == []  # its events have no actions


# ---- 7. github.com/aws/aws-cdk packages/@aws-cdk/aws-iotevents-actions-alpha/test/iot/
# ---- integ.timer-actions.js.snapshot/iotevents-timer-actions-test-stack.template.json
# ---- (CloudFormation's property names written as the API's; Ref/GetAtt resolved)

CDK_TIMERS = {
    "detectorModelName": "timer-actions",
    "roleArn": ROLE_ARN,
    "key": "payload.deviceId",
    "detectorModelDefinition": {
        "initialStateName": "Online",
        "states": [
            {
                "stateName": "Online",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "enter-event",
                            "condition": 'currentInput("test_input")',
                            "actions": [
                                {"setTimer": {"timerName": "MyTimer", "durationExpression": "60"}}
                            ],
                        }
                    ]
                },
                "onExit": {
                    "events": [
                        {
                            "eventName": "exit-event",
                            "actions": [{"clearTimer": {"timerName": "MyTimer"}}],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "input-event",
                            "condition": 'currentInput("test_input")',
                            "actions": [{"resetTimer": {"timerName": "MyTimer"}}],
                        }
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "Online_to_Offline",
                            "condition": 'timeout("MyTimer")',
                            "nextState": "Offline",
                        }
                    ],
                },
            },
            {
                "stateName": "Offline",
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "Offline_to_Online",
                            "condition": 'currentInput("test_input")',
                            "nextState": "Online",
                        }
                    ]
                },
            },
        ],
    },
}
CDK_DEVICE_INPUT = inputs(("test_input", ["payload.deviceId"]))


def _device(device: str = "d1") -> Step:
    return ("msg", "test_input", {"payload": {"deviceId": device}})


def test_cdk_timer_actions_go_offline_after_a_silent_minute_and_back_on_a_message() -> None:
    run = Run(CDK_TIMERS, CDK_DEVICE_INPUT).play([_device(), ("wait", 50), _device(), ("wait", 50)])
    assert run.state("d1") == "Online"  # each message reset the minute
    run.play([("wait", 10)])
    assert run.state("d1") == "Offline"
    assert run.engine.describe("d1")["detector"]["state"]["timers"] == []  # onExit cleared it
    run.play([_device()])
    assert run.state("d1") == "Online"
    assert [t["name"] for t in run.engine.describe("d1")["detector"]["state"]["timers"]] == [
        "MyTimer"
    ]


# ---- 8. github.com/aws/aws-cdk packages/@aws-cdk/aws-iotevents-actions-alpha/test/lambda/
# ---- integ.lambda-invoke-action.js.snapshot/lambda-invoke-action-test-stack.template.json

CDK_LAMBDA = {
    "detectorModelName": "lambda-invoke-action",
    "roleArn": ROLE_ARN,
    "key": "payload.deviceId",
    "detectorModelDefinition": {
        "initialStateName": "MyState",
        "states": [
            {
                "stateName": "MyState",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "test-event",
                            "condition": 'currentInput("test_input")',
                            "actions": [
                                {
                                    "lambda": {
                                        "functionArn": "arn:aws:lambda:us-east-1:123456789012:"
                                        "function:MyFunction3BAA72D1"
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


def test_cdk_lambda_action_runs_once_per_new_detector() -> None:
    run = Run(CDK_LAMBDA, CDK_DEVICE_INPUT).play([_device("d1"), _device("d1"), _device("d2")])
    assert run.actions() == [("lambda", "test-event"), ("lambda", "test-event")]
    assert [r.key_value for r in run.sink.requests] == ["d1", "d2"]
    default = run.sink.requests[0].payload  # AWS's default payload
    assert default["payload"]["detector"]["detectorModelName"] == "lambda-invoke-action"
    assert default["payload"]["eventTriggerDetails"]["inputName"] == "test_input"


# ---- 9. github.com/aws-samples/detect-scene-changes-aws-iot-events
# ---- detector_model/iot_detector_model.json (its "#detectorModelRoleArn#" placeholder filled)

ITINERARY = {
    "detectorModelDefinition": {
        "states": [
            {
                "stateName": "Stopped",
                "onInput": {
                    "events": [],
                    "transitionEvents": [
                        {
                            "eventName": "StartTransition",
                            "condition": '$input.deviceNotifInput.notifType == "StartItinerary"',
                            "actions": [{"iotTopicPublish": {"mqttTopic": "deviceOutboundTopic"}}],
                            "nextState": "Area1",
                        }
                    ],
                },
                "onEnter": {"events": []},
                "onExit": {"events": []},
            },
            {
                "stateName": "Area1",
                "onInput": {
                    "events": [],
                    "transitionEvents": [
                        {
                            "eventName": "StopTransition",
                            "condition": '$input.deviceNotifInput.notifType == "StopItinerary"',
                            "actions": [],
                            "nextState": "Stopped",
                        }
                    ],
                },
                "onEnter": {"events": []},
                "onExit": {"events": []},
            },
        ],
        "initialStateName": "Stopped",
    },
    "detectorModelDescription": "DeviceModelRole",
    "detectorModelName": "DeviceModelRole",
    "evaluationMethod": "BATCH",
    "key": "deviceID",
    "roleArn": ROLE_ARN,
}
ITINERARY_INPUT = inputs(("deviceNotifInput", ["deviceID", "notifType"]))


def _notif(kind: str) -> Step:
    return ("msg", "deviceNotifInput", {"deviceID": "cam-1", "notifType": kind})


def test_itinerary_starts_and_stops_and_tells_the_device_when_it_starts() -> None:
    run = Run(ITINERARY, ITINERARY_INPUT).play([_notif("Noise"), _notif("StartItinerary")])
    assert run.state("cam-1") == "Area1"
    run.play([_notif("StartItinerary"), _notif("StopItinerary")])
    assert run.state("cam-1") == "Stopped"
    assert run.actions() == [("iotTopicPublish", "StartTransition")]
    assert run.sink.requests[0].target["mqttTopic"] == "deviceOutboundTopic"


# ---- 10-16. The developer guide's own examples, written out in data/aws_examples (see its
# ---- README): https://docs.aws.amazon.com/iotevents/latest/developerguide/
# ---- iotevents-simple-example.html, iotevents-examples-cranes.html, and the ISA and simple
# ---- alarm blueprints of iotevents-examples.html

GUIDE = Path(__file__).with_name("data") / "aws_examples"


def guide(name: str) -> dict[str, Any]:
    return json.loads((GUIDE / f"{name}.json").read_text())


def guide_run(model: str, *input_names: str) -> Run:
    return Run(guide(model), [guide(name) for name in input_names])


def test_simple_example_motor_raises_and_clears_an_overpressure_alarm() -> None:
    """The guide's messages 00001-00004: 80, then 60 three times. BATCH evaluation: a
    transition reads the variables as they were before the events of the same message."""
    run = guide_run("motor_detector_model", "motor_pressure_input")

    def pressure(value: int) -> Step:
        return (
            "msg",
            "PressureInput",
            {"motorid": "Fulton-A32", "sensorData": {"pressure": value}},
        )

    run.play([pressure(80)])
    assert run.state("Fulton-A32") == "Dangerous"
    assert run.actions() == [("sns", "Pressure Threshold Breached")]
    run.play([pressure(60), pressure(60)])
    assert run.state("Fulton-A32") == "Dangerous"
    assert run.variables("Fulton-A32")["pressureThresholdBreached"] == "1"
    run.play([pressure(60)])
    assert run.state("Fulton-A32") == "Normal"
    assert run.actions()[1:] == [("sns", "Normal Pressure Restored")]


def _temperature(value: float, **key: str) -> Step:
    return ("msg", "TemperatureInput", {**key, "temperature": value})


@pytest.mark.parametrize(
    ("model", "key", "hot", "cool", "alarms"),
    [
        # the crane model SNSes on each hot reading once six came before it (BATCH: the
        # condition reads the count the message found)
        ("cranes_crane_detector_model", {"craneid": "c1"}, 36, 24, 2),
        # its update: one detector for all cranes, alarmRaised sends the SNS once
        ("cranes_update_crane_detector_model", {}, 31, 9, 1),
    ],
)
def test_cranes_crane_models_alarm_after_six_hot_readings(
    model: str, key: dict[str, str], hot: float, cool: float, alarms: int
) -> None:
    run = guide_run(model, "cranes_temperature_input")
    run.play([_temperature(hot, **key)] * 6)
    assert run.actions() == []
    run.play([_temperature(hot, **key)] * 2)
    assert run.actions() == [("sns", "Crane Threshold Breached")] * alarms
    run.play([_temperature(cool, **key)])
    assert run.variables(key.get("craneid"))["craneThresholdBreached"] == "0"


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("cranes_motor_detector_model", {"motorid": "m1"}),
        ("cranes_update_motor_detector_model", {}),
    ],
)
def test_cranes_motor_models_count_only_readings_both_hot_and_overpressurized(
    model: str, key: dict[str, str]
) -> None:
    run = guide_run(model, "cranes_pressure_input", "cranes_temperature_input")
    # each message reads the other input's last value: no temperature yet, then 80 kPa
    run.play([("msg", "PressureInput", {**key, "pressure": 80})])
    run.play([_temperature(31, **key)] * 3)
    run.play([("msg", "PressureInput", {**key, "pressure": 60}), _temperature(31, **key)])
    assert run.variables(key.get("motorid"))["motorThresholdBreached"] == "3"
    run.play([("msg", "PressureInput", {**key, "pressure": 75})] * 3)
    assert run.actions() == []  # six now, but the third message found five
    run.play([("msg", "PressureInput", {**key, "pressure": 75})])
    assert run.actions() == [("sns", "Motor Threshold Breached")]


def test_isa_alarm_blueprint_walks_the_isa_18_2_states() -> None:
    run = guide_run("isa_alarm_detector_model", "isa_alarm_input")
    name = "AWS_IoTEvents_Blueprints_ISA_Alarm_Input"

    def send(value: float = 50, command: str = "none") -> Step:
        limits = {"lower_threshold": 10, "higher_threshold": 90}
        return ("msg", name, {"alarmId": "a1", "value": value, "command": command, **limits})

    run.play([send()])
    assert (run.state("a1"), run.variables("a1")["state"]) == ("Normal", '"normal"')
    run.play([send(95)])
    assert run.state("a1") == "Unacknowledged"
    run.play([send(95, "acknowledge")])
    assert run.state("a1") == "Acknowledged"
    run.play([("wait", 60)])  # the snooze ran out with the value still high
    assert run.state("a1") == "Unacknowledged"
    run.play([send(50)])
    assert run.state("a1") == "RTN_Unacknowledged"
    run.play([send(50, "shelve")])
    assert run.state("a1") == "Shelved"
    run.play([send(50, "unshelve")])
    assert run.state("a1") == "RTN_Unacknowledged"
    run.play([send(50, "acknowledge")])
    assert run.state("a1") == "Normal"


def test_simple_alarm_blueprint_notifies_escalates_and_snoozes() -> None:
    run = guide_run("simple_alarm_detector_model", "simple_alarm_input")
    name = "AWS_IoTEvents_Blueprints_Simple_Alarm_Input"

    def send(value: float, command: str = "none") -> Step:
        return ("msg", name, {"alarmId": "a1", "value": value, "threshold": 70, "command": command})

    run.play([send(50), send(80)])
    assert run.state("a1") == "Alarming"
    assert run.actions() == [("sns", "Alarm Notification")]
    run.play([("wait", 300)])
    assert run.actions()[-1] == ("sns", "Escalated Alarm Notification")
    run.play([send(80, "acknowledge"), send(80, "dnd"), ("wait", 120)])
    assert run.state("a1") == "Alarming"  # the snooze ran out; do-not-disturb holds the SNS
    assert len(run.actions()) == 2
    run.play([send(50, "reset")])
    assert run.state("a1") == "Normal"


@pytest.mark.parametrize(
    ("body", "input_bodies"),
    [
        (CONNECTIVITY, LIFECYCLE),
        (HEARTBEAT, HEARTBEAT_INPUT),
        (TRACKING, TRACKING_INPUTS),
        (STORE_MONITOR, STORE_INPUT),
        (PUMP, PUMP_INPUTS),
        (CDK_ONLINE, CDK_INPUT),
        (CDK_TIMERS, CDK_DEVICE_INPUT),
        (CDK_LAMBDA, CDK_DEVICE_INPUT),
        (ITINERARY, ITINERARY_INPUT),
    ],
    ids=lambda v: v.get("detectorModelName", "") if isinstance(v, dict) else "",
)
def test_restated_models_read_only_declared_attributes(
    body: dict[str, Any], input_bodies: list[dict[str, Any]]
) -> None:
    assert Run(body, input_bodies).warnings == []
