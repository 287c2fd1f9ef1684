"""What a recorded AWS-only action would have sent, as AWS documents each service action.

iotevents-contracts §4 and the IoT Events API reference: ``sqs`` sends the payload, base64
encoded when ``useBase64`` is true (false by default); ``firehose`` writes it followed by
its ``separator``; ``dynamoDB`` writes it to one column, ``payloadField`` (``payload`` by
default), or to ``<payloadField>_raw`` as binary for a STRING payload, under a hash key of
``hashKeyType`` ``'STRING'`` (default) or ``'NUMBER'``, with ``operation`` ``'INSERT'``
(default), ``'UPDATE'`` or ``'DELETE'``; ``dynamoDBv2`` writes one column per top-level key
of a JSON payload; ``lambda`` is invoked with the payload as its event; an ``iotSiteWise``
value without a timestamp takes the event time. Each record in the sink's outbox says so
under ``aws``, or under ``aws_refused`` why AWS would refuse it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from detector_models import event, one_state_model

from cloud.adapters.local import InMemoryNotifier, InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from edge.clock import ManualClock

T0 = 1_767_225_600.25
T0_MS = 1_767_225_600_250
INPUT = {
    "inputName": "In",
    "inputDefinition": {
        "attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}, {"jsonPath": "text"}]
    },
}
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/readings"
JSON_PAYLOAD = {"contentExpression": "'{\"v\": ${$input.In.v}}'", "type": "JSON"}
STRING_PAYLOAD = {"contentExpression": "'v=${$input.In.v}'", "type": "STRING"}


def recorded(action: dict[str, Any], **message: Any) -> dict[str, Any]:
    """The outbox record of *action*, run on a message ``{"id": "k1", **message}``."""
    sink = LocalActionSink(InMemoryNotifier(), None)
    engine = DetectorEngine(
        load_detector_model(one_state_model(event(action))),
        [load_input(INPUT)],
        InMemoryStateStore(),
        ManualClock(T0),
        sink,
    )
    engine.put_message("In", {"id": "k1", **message})
    [record] = sink.outbox
    return record


def text_of(record: dict[str, Any]) -> str:
    return json.dumps(record["payload"], separators=(",", ":"))


@pytest.mark.parametrize(
    ("use_base64", "encoded"),
    [(None, False), (False, False), (True, True)],
)
def test_sqs_sends_the_payload_base64_encoded_only_when_asked(
    use_base64: bool | None, encoded: bool
) -> None:
    fields: dict[str, Any] = {"queueUrl": QUEUE, "payload": JSON_PAYLOAD}
    if use_base64 is not None:
        fields["useBase64"] = use_base64
    record = recorded({"sqs": fields}, v=3)
    body = base64.b64encode(b'{"v":3}').decode() if encoded else '{"v":3}'
    assert record["aws"] == {"QueueUrl": QUEUE, "MessageBody": body}


def test_sqs_sends_a_string_payload_as_it_is() -> None:
    record = recorded({"sqs": {"queueUrl": QUEUE, "payload": STRING_PAYLOAD}}, v=3)
    assert record["aws"]["MessageBody"] == "v=3"


@pytest.mark.parametrize("separator", ["\n", "\t", "\r\n", ","])
def test_firehose_writes_the_payload_followed_by_its_separator(separator: str) -> None:
    fields = {"deliveryStreamName": "readings", "separator": separator, "payload": JSON_PAYLOAD}
    record = recorded({"firehose": fields}, v=3)
    assert record["aws"] == {
        "DeliveryStreamName": "readings",
        "Record": {"Data": '{"v":3}' + separator},
    }


def test_firehose_without_a_separator_writes_the_payload_alone() -> None:
    record = recorded({"firehose": {"deliveryStreamName": "readings"}})
    assert record["aws"]["Record"]["Data"] == text_of(record)


def test_dynamodb_defaults_insert_the_default_payload_in_a_payload_column_under_a_string_key() -> (
    None
):
    action = {
        "dynamoDB": {"hashKeyField": "'sensor'", "hashKeyValue": "$input.In.v", "tableName": "'T'"}
    }
    record = recorded(action, v=5)
    assert record["payload"]["payload"]["detector"]["keyValue"] == "k1"
    assert record["aws"] == {
        "TableName": "T",
        "operation": "INSERT",
        "Key": {"sensor": "5"},
        "Item": {"sensor": "5", "payload": record["payload"]},
    }


def test_dynamodb_number_keys_a_range_key_and_a_named_payload_column() -> None:
    action = {
        "dynamoDB": {
            "hashKeyField": "'sensor'",
            "hashKeyValue": "$input.In.text",
            "hashKeyType": "'NUMBER'",
            "rangeKeyField": "'at'",
            "rangeKeyValue": "$input.In.v",
            "rangeKeyType": "'STRING'",
            "operation": "'UPDATE'",
            "payloadField": "'reading'",
            "tableName": "'T'",
            "payload": JSON_PAYLOAD,
        }
    }
    record = recorded(action, v=1.5, text="42")
    assert record["aws"] == {
        "TableName": "T",
        "operation": "UPDATE",
        "Key": {"sensor": 42, "at": "1.5"},
        "Item": {"sensor": 42, "at": "1.5", "reading": {"v": 1.5}},
    }


def test_dynamodb_writes_a_string_payload_as_binary_to_the_raw_column() -> None:
    action = {
        "dynamoDB": {
            "hashKeyField": "'sensor'",
            "hashKeyValue": "$input.In.id",
            "payloadField": "'reading'",
            "tableName": "'T'",
            "payload": STRING_PAYLOAD,
        }
    }
    record = recorded(action, v=3)
    assert record["aws"]["Item"] == {
        "sensor": "k1",
        "reading_raw": base64.b64encode(b"v=3").decode(),
    }


def test_dynamodb_delete_names_the_key_only() -> None:
    action = {
        "dynamoDB": {
            "hashKeyField": "'sensor'",
            "hashKeyValue": "$input.In.id",
            "operation": "'DELETE'",
            "tableName": "'T'",
        }
    }
    assert recorded(action)["aws"] == {
        "TableName": "T",
        "operation": "DELETE",
        "Key": {"sensor": "k1"},
    }


def test_a_number_key_that_is_not_a_number_is_refused_naming_the_field() -> None:
    action = {
        "dynamoDB": {
            "hashKeyField": "'sensor'",
            "hashKeyValue": "$input.In.text",
            "hashKeyType": "'NUMBER'",
            "tableName": "'T'",
        }
    }
    record = recorded(action, text="pump-01")
    assert "aws" not in record
    assert "hashKeyValue" in record["aws_refused"] and "NUMBER" in record["aws_refused"]


def test_dynamodb_v2_writes_one_column_per_top_level_key() -> None:
    payload = {"contentExpression": '\'{"sensor": "k1", "v": ${$input.In.v}}\'', "type": "JSON"}
    record = recorded({"dynamoDBv2": {"tableName": "'T'", "payload": payload}}, v=3)
    assert record["aws"] == {"TableName": "T", "Item": {"sensor": "k1", "v": 3}}


def test_dynamodb_v2_with_a_payload_that_is_not_an_object_is_refused() -> None:
    payload = {"contentExpression": "'[1, 2]'", "type": "JSON"}
    record = recorded({"dynamoDBv2": {"tableName": "'T'", "payload": payload}})
    assert "aws" not in record and "object" in record["aws_refused"]


def test_lambda_is_invoked_with_the_payload_as_its_event() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    record = recorded({"lambda": {"functionArn": arn}})
    assert record["aws"] == {"FunctionName": arn, "Payload": text_of(record)}


def test_a_sitewise_value_without_a_timestamp_takes_the_event_time() -> None:
    action = {
        "iotSiteWise": {
            "propertyAlias": "'/plant/k1/v'",
            "propertyValue": {"value": {"doubleValue": "$input.In.v"}},
        }
    }
    assert recorded(action, v=2)["aws"] == {
        "entries": [
            {
                "propertyAlias": "/plant/k1/v",
                "propertyValues": [
                    {
                        "value": {"doubleValue": 2.0},
                        "timestamp": {"timeInSeconds": T0_MS // 1000, "offsetInNanos": 250_000_000},
                    }
                ],
            }
        ]
    }


def test_a_sitewise_entry_with_every_field() -> None:
    action = {
        "iotSiteWise": {
            "entryId": "'e1'",
            "assetId": "'a-1'",
            "propertyId": "'p-1'",
            "propertyValue": {
                "value": {"integerValue": "$input.In.v"},
                "timestamp": {"timeInSeconds": "'1700000000'"},
                "quality": "'UNCERTAIN'",
            },
        }
    }
    assert recorded(action, v=7)["aws"] == {
        "entries": [
            {
                "entryId": "e1",
                "assetId": "a-1",
                "propertyId": "p-1",
                "propertyValues": [
                    {
                        "value": {"integerValue": 7},
                        "timestamp": {"timeInSeconds": 1_700_000_000, "offsetInNanos": 0},
                        "quality": "UNCERTAIN",
                    }
                ],
            }
        ]
    }
