"""LocalActionSink: what each service action becomes locally; nothing is silently dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cloud.adapters.local import InMemoryNotifier, InMemoryPublisher, InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from edge.clock import ManualClock

INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
}


def run(actions: list[dict[str, Any]], sink: LocalActionSink) -> DetectorEngine:
    model = load_detector_model(
        {
            "detectorModelName": "acts",
            "key": "id",
            "roleArn": "arn:aws:iam::1:role/r",
            "detectorModelDefinition": {
                "initialStateName": "A",
                "states": [
                    {
                        "stateName": "A",
                        "onInput": {
                            "events": [
                                {
                                    "eventName": "go",
                                    "condition": 'currentInput("In")',
                                    "actions": actions,
                                }
                            ]
                        },
                    }
                ],
            },
        }
    )
    engine = DetectorEngine(model, [load_input(INPUT)], InMemoryStateStore(), ManualClock(), sink)
    engine.put_message("In", {"id": "k1", "v": 3})
    return engine


def test_aws_only_actions_are_recorded_to_the_outbox(tmp_path: Path) -> None:
    outbox = tmp_path / "actions-outbox.jsonl"
    sink = LocalActionSink(InMemoryNotifier(), InMemoryPublisher(), outbox=outbox)
    run(
        [
            {"lambda": {"functionArn": "arn:aws:lambda:us-east-1:1:function:f"}},
            {"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/1/q", "useBase64": True}},
            {"firehose": {"deliveryStreamName": "s", "separator": ","}},
            {"dynamoDBv2": {"tableName": "'t'"}},
            {
                "iotSiteWise": {
                    "propertyAlias": "'/plant/k1/v'",
                    "propertyValue": {"value": {"integerValue": "$input.In.v"}},
                }
            },
        ],
        sink,
    )
    records = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [r["kind"] for r in records] == [
        "lambda",
        "sqs",
        "firehose",
        "dynamoDBv2",
        "iotSiteWise",
    ]
    assert all(r["note"] == "AWS-only action; recorded locally" for r in records)
    assert records[4]["target"]["propertyValue.value.integerValue"] == 3
    assert records[0]["payload"]["payload"]["detector"]["keyValue"] == "k1"
    assert sink.outbox == records


def test_topic_publish_without_a_publisher_is_recorded() -> None:
    sink = LocalActionSink(InMemoryNotifier(), None)
    run([{"iotTopicPublish": {"mqttTopic": "plant/${$input.In.id}/cmd"}}], sink)
    [record] = sink.outbox
    assert record["note"] == "no publisher configured"
    assert record["target"]["mqttTopic"] == "plant/k1/cmd"


def test_topic_publish_sends_the_json_payload() -> None:
    publisher = InMemoryPublisher()
    run(
        [
            {
                "iotTopicPublish": {
                    "mqttTopic": "plant/cmd",
                    "payload": {"contentExpression": "'{\"v\": ${$input.In.v}}'", "type": "JSON"},
                }
            }
        ],
        LocalActionSink(InMemoryNotifier(), publisher),
    )
    assert publisher.published == [("plant/cmd", b'{"v":3}', 1)]
