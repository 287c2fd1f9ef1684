"""Public alarm models, restated: each is loaded as CreateAlarmModel takes it and, when AWS
would take it, run with the messages and data-plane requests published beside it.

Sources (public; reference only, restated here, not copied whole):

- ``MotorTemperatureAlarm``: an AWS CLI cheat sheet (``aws iotevents create-alarm-model``
  with ``--key deviceId --severity 50``, its ``batch-put-message`` readings and the five
  ``iotevents-data batch-*-alarm`` requests). Its ``alarmNotification`` uses an ``sns``
  action, which AWS does not take there (NotificationTargetActions holds ``lambdaAction``
  only), around a template ``'Alarm: motor temp ${}'`` with nothing inside.
- ``BoilerTemperatureHighAlarm``: the AWS IoT SiteWise user guide ("Define AWS IoT Events
  alarms"), rule on ``$sitewise.assetModel...propertyValue.value``.
- ``HighCO2Alert``: a public design document's "SiteWise alarm": an ARN as inputProperty,
  ``GREATER_THAN`` and a JSON number threshold, none of which CreateAlarmModel takes.
- ``tempAlarm``: an open-source IoT Events emulator's documented rule
  (``$input.tempInput.temperature`` GREATER ``"30"``).
- ``MyCfnAlarmModel``: the AWS CDK's generated ``CfnAlarmModel`` example, every member of
  the API shape present, its placeholders filled with values AWS takes.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from detector_models import RecordingSink

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from cloud.detectors.alarms.operations import batch_alarm_action
from edge.clock import ManualClock
from edge.errors import DetectorModelError

ROLE = "arn:aws:iam::123456789012:role/IoTEventsRole"

MOTOR: dict[str, Any] = {
    "alarmModelName": "MotorTemperatureAlarm",
    "alarmModelDescription": "Alarm when motor temperature exceeds threshold",
    "roleArn": ROLE,
    "key": "deviceId",
    "severity": 50,
    "alarmRule": {
        "simpleRule": {
            "inputProperty": "$input.TemperatureSensorInput.temperature",
            "comparisonOperator": "GREATER",
            "threshold": "90",
        }
    },
    "alarmNotification": {
        "notificationActions": [
            {
                "action": {
                    "sns": {
                        "targetArn": "arn:aws:sns:us-east-1:123456789012:MotorAlarms",
                        "payload": {
                            "contentExpression": "'Alarm: motor temp ${}'",
                            "type": "STRING",
                        },
                    }
                }
            }
        ]
    },
    "alarmEventActions": {
        "alarmActions": [{"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:MotorAlarms"}}]
    },
}
MOTOR_INPUT = {
    "inputName": "TemperatureSensorInput",
    "inputDefinition": {
        "attributes": [
            {"jsonPath": "deviceId"},
            {"jsonPath": "temperature"},
            {"jsonPath": "humidity"},
        ]
    },
}


def engine_for(body: dict[str, Any], raw_input: dict[str, Any]) -> tuple[AlarmEngine, ManualClock]:
    clock = ManualClock(1_700_000_000.0)
    engine = AlarmEngine(
        load_alarm_model(body),
        [load_input(raw_input)],
        InMemoryStateStore(),
        clock,
        RecordingSink(),
    )
    return engine, clock


def test_motor_alarm_as_published_is_refused_at_its_sns_notification() -> None:
    with pytest.raises(DetectorModelError) as raised:
        load_alarm_model(MOTOR)
    assert "$.alarmNotification.notificationActions[0].action.sns: unknown field" in str(
        raised.value
    )
    assert "lambdaAction" in str(raised.value)


@pytest.mark.parametrize("template", ["${}", "${ }"])
def test_an_empty_template_is_refused_saying_what_to_put_there(template: str) -> None:
    """AWS documents a substitution template as ``${`` an expression ``}`` and never an
    empty one: plantwatch refuses it where the model is loaded, naming the field and
    saying how to write it, rather than sending a text AWS might not."""
    body = copy.deepcopy(MOTOR)
    body["alarmNotification"]["notificationActions"][0]["action"] = {
        "lambdaAction": {
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:notify",
            "payload": {"contentExpression": f"'Alarm: motor temp {template}'", "type": "STRING"},
        }
    }
    with pytest.raises(DetectorModelError) as raised:
        load_alarm_model(body)
    message = str(raised.value)
    assert "lambdaAction.payload.contentExpression" in message
    assert "empty ${} template" in message
    assert "put an expression between the braces" in message


def test_motor_alarm_runs_with_the_published_readings_and_requests() -> None:
    """Without alarmCapabilities AWS's defaults apply: instances start DISABLED
    (InitializationConfiguration: "The default value is TRUE"), so the published readings
    only create them; once enabled, 92.5 > 90 is ACTIVE and 75.0 is not, and the five
    published requests each take device-001 where AWS says."""
    body = {k: v for k, v in MOTOR.items() if k != "alarmNotification"}
    engine, clock = engine_for(body, MOTOR_INPUT)
    engines = {"MotorTemperatureAlarm": engine}
    readings = [
        {"deviceId": "device-001", "temperature": 92.5, "humidity": 45},
        {"deviceId": "device-002", "temperature": 75.0, "humidity": 50},
    ]
    for reading in readings:
        engine.put_message("TemperatureSensorInput", reading)
    assert [s["stateName"] for s in engine.list_alarms()["alarmSummaries"]] == [
        "DISABLED",
        "DISABLED",
    ]

    def batch(verb: str, **entry: Any) -> list[dict[str, str]]:
        request = {
            "requestId": f"{verb}-001",
            "alarmModelName": "MotorTemperatureAlarm",
            "keyValue": "device-001",
            **entry,
        }
        return batch_alarm_action(engines, verb, {f"{verb}ActionRequests": [request]})[
            "errorEntries"
        ]

    assert batch("enable") == []
    assert batch("enable", requestId="enable-002", keyValue="device-002") == []
    for reading in readings:
        engine.put_message("TemperatureSensorInput", reading)
    assert (engine.state_of("device-001"), engine.state_of("device-002")) == ("ACTIVE", "NORMAL")
    described = engine.describe("device-001")["alarm"]
    assert described["severity"] == 50
    assert described["alarmState"]["ruleEvaluation"]["simpleRuleEvaluation"] == {
        "inputPropertyValue": "92.5",
        "operator": "GREATER",
        "thresholdValue": "90",
    }
    assert batch("acknowledge", note="Investigated and within tolerance") == []
    assert engine.state_of("device-001") == "ACKNOWLEDGED"
    assert batch("snooze", snoozeDuration=300, note="Maintenance window") == []
    assert engine.state_of("device-001") == "SNOOZE_DISABLED"
    clock.advance(300)
    engine.tick()
    assert engine.state_of("device-001") == "NORMAL"
    assert batch("reset") == []
    assert engine.state_of("device-001") == "NORMAL"
    assert batch("disable", note="Sensor offline") == []
    assert engine.state_of("device-001") == "DISABLED"
    action = engine.describe("device-001")["alarm"]["alarmState"]["customerAction"]
    assert action == {
        "actionName": "DISABLE",
        "disableActionConfiguration": {"note": "Sensor offline"},
    }


def test_sitewise_guide_alarm_is_refused_naming_sitewise_and_the_way_round() -> None:
    body = {
        "alarmModelName": "BoilerTemperatureHighAlarm",
        "alarmModelDescription": "Detects when the boiler temperature is high.",
        "roleArn": ROLE,
        "severity": 3,
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$sitewise.assetModel.`assetModelId`.`alarmPropertyId`"
                ".propertyValue.value",
                "comparisonOperator": "GREATER",
                "threshold": "$sitewise.assetModel.`assetModelId`.`thresholdAttributeId`"
                ".propertyValue.value",
            }
        },
    }
    with pytest.raises(DetectorModelError) as raised:
        load_alarm_model(body)
    message = str(raised.value)
    assert "$.alarmRule.simpleRule.inputProperty" in message
    assert "SiteWise" in message and "$input.<Input>.<path>" in message


def test_high_co2_alert_is_refused_field_by_field() -> None:
    """Each of its three departures from CreateAlarmModel is named, the next once the
    previous is put right."""
    body: dict[str, Any] = {
        "alarmModelName": "HighCO2Alert",
        "alarmModelDescription": "Trigger when CO2 exceeds 5000 ppm",
        "roleArn": "arn:aws:iam::123456789012:role/SiteWiseAlarmRole",
        "severity": 3,
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "arn:aws:iotsitewise:us-east-1:123456789012:asset-property/co2_ppm",
                "comparisonOperator": "GREATER_THAN",
                "threshold": 5000,
            }
        },
        "alarmEventActions": {
            "alarmActions": [{"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:alerts"}}]
        },
    }
    rule = body["alarmRule"]["simpleRule"]
    with pytest.raises(DetectorModelError, match=r"simpleRule\.inputProperty"):
        load_alarm_model(body)
    rule["inputProperty"] = "$input.Air.co2_ppm"
    with pytest.raises(DetectorModelError, match=r"comparisonOperator: 'GREATER_THAN'.*GREATER"):
        load_alarm_model(body)
    rule["comparisonOperator"] = "GREATER"
    with pytest.raises(DetectorModelError, match=r"simpleRule\.threshold"):
        load_alarm_model(body)
    rule["threshold"] = "5000"
    engine, _ = engine_for(
        body,
        {"inputName": "Air", "inputDefinition": {"attributes": [{"jsonPath": "co2_ppm"}]}},
    )
    engine.put_message("Air", {"co2_ppm": 5200})
    assert engine.state_of() == "DISABLED"  # no key: one alarm, DISABLED by AWS's default
    engine.enable(None)
    engine.put_message("Air", {"co2_ppm": 5200})
    assert engine.state_of() == "ACTIVE"


def test_emulator_documented_rule_runs_through_the_acknowledge_flow() -> None:
    body = {
        "alarmModelName": "tempAlarm",
        "roleArn": ROLE,
        "key": "sensorId",
        "alarmRule": {
            "simpleRule": {
                "comparisonOperator": "GREATER",
                "inputProperty": "$input.tempInput.temperature",
                "threshold": "30",
            }
        },
        "alarmCapabilities": {
            "initializationConfiguration": {"disabledOnInitialization": False},
            "acknowledgeFlow": {"enabled": True},
        },
    }
    raw_input = {
        "inputName": "tempInput",
        "inputDefinition": {"attributes": [{"jsonPath": "sensorId"}, {"jsonPath": "temperature"}]},
    }
    engine, _ = engine_for(body, raw_input)
    states = []
    for temperature in (25, 31, 29, 35):
        engine.put_message("tempInput", {"sensorId": "s1", "temperature": temperature})
        states.append(engine.state_of("s1"))
    assert states == ["NORMAL", "ACTIVE", "LATCHED", "ACTIVE"]
    engine.acknowledge("s1", note="fan replaced")
    engine.put_message("tempInput", {"sensorId": "s1", "temperature": 20})
    assert engine.state_of("s1") == "NORMAL"


def cdk_example() -> dict[str, Any]:
    """The CDK's generated CfnAlarmModel example in the API's member names, every optional
    member present."""
    payload = {"contentExpression": "'{\"t\": ${$input.In.t}}'", "type": "JSON"}
    return {
        "alarmModelName": "MyCfnAlarmModel",
        "alarmModelDescription": "every member of the shape",
        "roleArn": ROLE,
        "key": "id",
        "severity": 123,
        "tags": [{"key": "key", "value": "value"}],
        "alarmRule": {
            "simpleRule": {
                "comparisonOperator": "GREATER_OR_EQUAL",
                "inputProperty": "$input.In.t",
                "threshold": "$input.In.limit",
            }
        },
        "alarmCapabilities": {
            "acknowledgeFlow": {"enabled": False},
            "initializationConfiguration": {"disabledOnInitialization": False},
        },
        "alarmEventActions": {
            "alarmActions": [
                {
                    "dynamoDB": {
                        "hashKeyField": "'id'",
                        "hashKeyValue": "$input.In.id",
                        "tableName": "'alarms'",
                        "hashKeyType": "'STRING'",
                        "operation": "'INSERT'",
                        "payload": payload,
                        "payloadField": "'payload'",
                        "rangeKeyField": "'t'",
                        "rangeKeyType": "'NUMBER'",
                        "rangeKeyValue": "'1'",
                    }
                },
                {"dynamoDBv2": {"tableName": "'alarms2'", "payload": payload}},
                {
                    "firehose": {
                        "deliveryStreamName": "alarms",
                        "payload": payload,
                        "separator": "\n",
                    }
                },
                {"iotEvents": {"inputName": "Echo", "payload": payload}},
                {
                    "iotSiteWise": {
                        "assetId": "'a1'",
                        "entryId": "'e1'",
                        "propertyId": "'p1'",
                        "propertyValue": {
                            "quality": "'GOOD'",
                            "timestamp": {"offsetInNanos": "'0'", "timeInSeconds": "'1700000000'"},
                            "value": {"doubleValue": "$input.In.t"},
                        },
                    }
                },
                {"iotTopicPublish": {"mqttTopic": "alarms/t", "payload": payload}},
                {"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}},
                {"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:t", "payload": payload}},
                {
                    "sqs": {
                        "queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
                        "payload": payload,
                        "useBase64": False,
                    }
                },
            ]
        },
        "alarmNotification": {
            "notificationActions": [
                {
                    "action": {
                        "lambdaAction": {
                            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:n",
                            "payload": payload,
                        }
                    },
                    "emailConfigurations": [
                        {
                            "from": "ops@example.com",
                            "recipients": {
                                "to": [{"ssoIdentity": {"identityStoreId": "d-1", "userId": "u-1"}}]
                            },
                            "content": {"additionalMessage": "m", "subject": "s"},
                        }
                    ],
                    "smsConfigurations": [
                        {
                            "recipients": [{"ssoIdentity": {"identityStoreId": "d-1"}}],
                            "additionalMessage": "m",
                            "senderId": "PLANT",
                        }
                    ],
                }
            ]
        },
    }


def test_cdk_example_with_every_member_loads_and_runs_each_action_on_a_change() -> None:
    raw_input = {
        "inputName": "In",
        "inputDefinition": {
            "attributes": [{"jsonPath": "id"}, {"jsonPath": "t"}, {"jsonPath": "limit"}]
        },
    }
    clock = ManualClock(1_700_000_000.0)
    sink = RecordingSink()
    engine = AlarmEngine(
        load_alarm_model(cdk_example()),
        [
            load_input(raw_input),
            load_input(
                {"inputName": "Echo", "inputDefinition": {"attributes": [{"jsonPath": "t"}]}}
            ),
        ],
        InMemoryStateStore(),
        clock,
        sink,
    )
    engine.put_message("In", {"id": "k1", "t": 10, "limit": 10})
    assert engine.state_of("k1") == "ACTIVE"
    kinds = [r.kind for r in sink.requests]
    assert kinds == [
        "dynamoDB",
        "dynamoDBv2",
        "firehose",
        "iotEvents",
        "iotSiteWise",
        "iotTopicPublish",
        "lambda",
        "sns",
        "sqs",
    ]  # acknowledge flow off: the alarm actions only, no notification
    assert [r.payload for r in sink.requests if r.kind == "sqs"] == [{"t": 10}]


def test_members_the_api_leaves_optional_may_be_left_out() -> None:
    """CreateAlarmModel's shapes: AlarmNotification.notificationActions and
    EmailRecipients.to are optional members (only the lists, when given, need one entry),
    so ``"alarmNotification": {}`` is a model without notifications and an email
    configuration with ``"recipients": {}`` addresses nobody."""
    body = copy.deepcopy(cdk_example())
    body["alarmNotification"] = {}
    assert load_alarm_model(body).notifications == ()
    body = copy.deepcopy(cdk_example())
    email = body["alarmNotification"]["notificationActions"][0]["emailConfigurations"][0]
    email["recipients"] = {}
    [notification] = load_alarm_model(body).notifications
    assert notification.emails[0].to == ()
    assert notification.emails[0].sender == "ops@example.com"
    email["recipients"] = {"to": []}
    with pytest.raises(DetectorModelError, match=r"recipients\.to: at least one recipient"):
        load_alarm_model(body)
