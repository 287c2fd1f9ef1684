"""Service-action fields AWS restricts: refused at load when literal, not taken when evaluated.

AWS IoT Events developer guide, "Working with other AWS services": the SQS action takes no
FIFO queues, a dynamoDBv2 payload must be JSON, DynamoDB key types are STRING or NUMBER and
operations INSERT, UPDATE or DELETE, a SiteWise quality is GOOD, BAD or UNCERTAIN and its
timestamp 1-31556889864403199 s plus 0-999999999 ns. SiteWise values are typed fields, where
text is coerced (spec §4 Decision).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from detector_models import RecordingSink, event, one_state_model

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from edge.clock import ManualClock
from edge.errors import DetectorModelError

INPUT = {
    "inputName": "In",
    "inputDefinition": {
        "attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}, {"jsonPath": "text"}]
    },
}
PATH = "$.detectorModelDefinition.states[0].onInput.events[0].actions[0]"


def body(action: dict[str, Any]) -> dict[str, Any]:
    return one_state_model(event(action))


def run(action: dict[str, Any], message: dict[str, Any]) -> list[Any]:
    sink = RecordingSink()
    engine = DetectorEngine(
        load_detector_model(body(action)),
        [load_input(INPUT)],
        InMemoryStateStore(),
        ManualClock(),
        sink,
    )
    engine.put_message("In", {"id": "k1", **message})
    return sink.requests


def ddb(**extra: str) -> dict[str, Any]:
    return {
        "dynamoDB": {
            "hashKeyField": "'key'",
            "hashKeyValue": "$input.In.id",
            "tableName": "'T'",
            **extra,
        }
    }


def sitewise(value: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"iotSiteWise": {"propertyAlias": "'/p/1'", "propertyValue": {"value": value, **extra}}}


@pytest.mark.parametrize(
    ("action", "field", "reason"),
    [
        (
            {"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/1/q.fifo"}},
            "sqs.queueUrl",
            "FIFO queues are not supported",
        ),
        (
            {
                "dynamoDBv2": {
                    "tableName": "'T'",
                    "payload": {"contentExpression": "'x'", "type": "STRING"},
                }
            },
            "dynamoDBv2.payload.type",
            "must be JSON",
        ),
        (ddb(operation="'UPSERT'"), "dynamoDB.operation", "INSERT, UPDATE, DELETE"),
        (ddb(hashKeyType="'TEXT'"), "dynamoDB.hashKeyType", "STRING, NUMBER"),
        (ddb(rangeKeyType="'number'"), "dynamoDB.rangeKeyType", "STRING, NUMBER"),
        (ddb(operation="1"), "dynamoDB.operation", "integer '1'"),
        (
            sitewise({"doubleValue": "1.5"}, quality="'GREAT'"),
            "iotSiteWise.propertyValue.quality",
            "GOOD, BAD, UNCERTAIN",
        ),
        (
            sitewise({"doubleValue": "1.5"}, timestamp={"timeInSeconds": "0"}),
            "iotSiteWise.propertyValue.timestamp.timeInSeconds",
            "1-31556889864403199",
        ),
        (
            sitewise(
                {"doubleValue": "1.5"},
                timestamp={"timeInSeconds": "'1700000000'", "offsetInNanos": "1000000000"},
            ),
            "iotSiteWise.propertyValue.timestamp.offsetInNanos",
            "0-999999999",
        ),
        (
            sitewise({"integerValue": "2147483648"}),
            "iotSiteWise.propertyValue.value.integerValue",
            "integer",
        ),
        (
            sitewise({"integerValue": "'1.5'"}),
            "iotSiteWise.propertyValue.value.integerValue",
            "integer",
        ),
        (
            sitewise({"doubleValue": "'ten'"}),
            "iotSiteWise.propertyValue.value.doubleValue",
            "a number",
        ),
        (
            sitewise({"booleanValue": "'maybe'"}),
            "iotSiteWise.propertyValue.value.booleanValue",
            "TRUE or FALSE",
        ),
    ],
)
def test_a_literal_aws_would_refuse_is_refused_naming_the_field(
    action: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(DetectorModelError) as info:
        load_detector_model(body(action))
    message = str(info.value)
    assert f"{PATH}.{field}:" in message
    assert reason in message


def test_the_documented_dynamodb_action_loads_and_runs() -> None:
    action = ddb(
        hashKeyType="'STRING'",
        rangeKeyType="'NUMBER'",
        rangeKeyField="'timestamp'",
        rangeKeyValue="$input.In.v",
        operation="'INSERT'",
        payloadField="'info'",
    )
    (request,) = run(action, {"v": 7})
    assert request.target["hashKeyType"] == "STRING"
    assert request.target["rangeKeyValue"] == 7
    assert request.target["operation"] == "INSERT"


@pytest.mark.parametrize(
    ("value", "message", "expected"),
    [
        ({"integerValue": "'12'"}, {}, 12),
        ({"integerValue": "$input.In.text"}, {"text": " -3 "}, -3),
        ({"integerValue": "$input.In.v"}, {"v": 4.0}, 4),
        ({"doubleValue": "'1.5'"}, {}, 1.5),
        ({"doubleValue": "$input.In.v"}, {"v": 2}, 2.0),
        ({"booleanValue": "'TRUE'"}, {}, True),
        ({"booleanValue": "$input.In.text"}, {"text": "false"}, False),
        ({"booleanValue": "$input.In.v > 1"}, {"v": 2}, True),
        ({"stringValue": "'12'"}, {}, "12"),
    ],
)
def test_sitewise_values_are_typed_and_text_is_coerced(
    value: dict[str, str], message: dict[str, Any], expected: Any
) -> None:
    (request,) = run(sitewise(value), message)
    (kind,) = value
    got = request.target[f"propertyValue.value.{kind}"]
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("action", "message", "field"),
    [
        (ddb(operation="$input.In.text"), {"text": "UPSERT"}, "dynamoDB.operation"),
        (ddb(hashKeyType="$input.In.text"), {"text": "string"}, "dynamoDB.hashKeyType"),
        (
            sitewise({"integerValue": "$input.In.v"}),
            {"v": 1.5},
            "iotSiteWise.propertyValue.value.integerValue",
        ),
        (
            sitewise(
                {"integerValue": "$input.In.text"},
            ),
            {"text": "1" * 5000},
            "iotSiteWise.propertyValue.value.integerValue",
        ),
        (
            sitewise({"doubleValue": "$input.In.text"}),
            {"text": "nan"},
            "iotSiteWise.propertyValue.value.doubleValue",
        ),
        (
            sitewise({"booleanValue": "$input.In.v"}),
            {"v": 1},
            "iotSiteWise.propertyValue.value.booleanValue",
        ),
        (
            sitewise({"doubleValue": "1.0"}, quality="$input.In.text"),
            {"text": "good"},
            "iotSiteWise.propertyValue.quality",
        ),
        (
            sitewise({"doubleValue": "1.0"}, timestamp={"timeInSeconds": "$input.In.v"}),
            {"v": -5},
            "iotSiteWise.propertyValue.timestamp.timeInSeconds",
        ),
    ],
)
def test_an_evaluated_value_aws_would_refuse_is_not_sent_and_names_the_field(
    action: dict[str, Any], message: dict[str, Any], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cloud.detectors.engine"):
        assert run(action, message) == []
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert f"{PATH}.{field}:" in logged
    assert "action not taken" in logged


def test_the_same_values_from_a_message_are_sent_when_valid() -> None:
    (request,) = run(ddb(operation="$input.In.text"), {"text": "DELETE"})
    assert request.target["operation"] == "DELETE"
    (request,) = run(sitewise({"doubleValue": "1.0"}, quality="$input.In.text"), {"text": "BAD"})
    assert request.target["propertyValue.quality"] == "BAD"


@pytest.mark.parametrize(
    ("action", "field", "reason"),
    [
        (
            sitewise({"doubleValue": "1.0"}, timestamp={"offsetInNanos": "0"}),
            "iotSiteWise.propertyValue.timestamp",
            "missing required field 'timeInSeconds'",
        ),
        (
            sitewise({"doubleValue": "1.0"}, timestamp={"timeInSeconds": "1", "seconds": "1"}),
            "iotSiteWise.propertyValue.timestamp.seconds",
            "unknown field",
        ),
        (
            sitewise({"doubleValue": "1.0", "floatValue": "1.0"}),
            "iotSiteWise.propertyValue.value.floatValue",
            "unknown field",
        ),
        (
            sitewise({"doubleValue": "1.0"}, qualty="'GOOD'"),
            "iotSiteWise.propertyValue.qualty",
            "unknown field",
        ),
    ],
)
def test_sitewise_property_value_shape_follows_the_api(
    action: dict[str, Any], field: str, reason: str
) -> None:
    """AssetPropertyValue {value, timestamp, quality}; AssetPropertyTimestamp needs timeInSeconds."""
    with pytest.raises(DetectorModelError) as info:
        load_detector_model(body(action))
    assert f"{PATH}.{field}: {reason}" in str(info.value)


def test_descriptions_are_text_of_at_most_1024_characters() -> None:
    from cloud.detectors.alarms.model import load_alarm_model

    detector = body({"sns": {"targetArn": "arn:aws:sns:us-east-1:1:t"}})
    assert load_detector_model({**detector, "detectorModelDescription": "d" * 1024}).description
    for bad, reason in (("d" * 1025, "1025 characters; at most 1024"), (7, "expected a string")):
        with pytest.raises(DetectorModelError, match=rf"\$\.detectorModelDescription: {reason}"):
            load_detector_model({**detector, "detectorModelDescription": bad})
    alarm = {
        "alarmModelName": "a",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$input.In.v",
                "comparisonOperator": "GREATER",
                "threshold": "1",
            }
        },
    }
    with pytest.raises(DetectorModelError, match=r"\$\.alarmModelDescription: 1025 characters"):
        load_alarm_model({**alarm, "alarmModelDescription": "d" * 1025})


@pytest.mark.parametrize("topic", ["alerts/#", "a/+/b", "#"])
def test_a_publish_topic_with_a_wildcard_is_refused_at_load(topic: str) -> None:
    """MQTT 3.3.2-2: a PUBLISH topic name holds no wildcard; AWS IoT refuses one."""
    with pytest.raises(DetectorModelError) as info:
        load_detector_model(body({"iotTopicPublish": {"mqttTopic": topic}}))
    assert f"{PATH}.iotTopicPublish.mqttTopic: string {topic!r}: expected a topic name" in str(
        info.value
    )


@pytest.mark.parametrize("text", ["#", "+", "", "a\0b"])
def test_a_publish_topic_that_evaluates_to_no_topic_name_is_not_published(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    action = {"iotTopicPublish": {"mqttTopic": "alerts/${$input.In.text}"}}
    with caplog.at_level(logging.WARNING, logger="cloud.detectors.engine"):
        sent = run(action, {"text": text})
    if text == "":
        assert [r.target["mqttTopic"] for r in sent] == ["alerts/"]
        return
    assert sent == []
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert f"{PATH}.iotTopicPublish.mqttTopic: string" in logged
    assert run(action, {"text": "pump-1"})[0].target["mqttTopic"] == "alerts/pump-1"
