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


def _alarm_model(threshold: int) -> dict[str, Any]:
    """Normal -> Alarm above *threshold*; entering Alarm sends an sns alert."""
    return {
        "detectorModelName": "m",
        "key": "id",
        "roleArn": "arn:aws:iam::1:role/r",
        "detectorModelDefinition": {
            "initialStateName": "Normal",
            "states": [
                {
                    "stateName": "Normal",
                    "onInput": {
                        "transitionEvents": [
                            {
                                "eventName": "hot",
                                "condition": f"$input.In.v > {threshold}",
                                "nextState": "Alarm",
                            }
                        ]
                    },
                },
                {
                    "stateName": "Alarm",
                    "onEnter": {
                        "events": [
                            {
                                "eventName": "raise",
                                "actions": [
                                    {"sns": {"targetArn": "arn:aws:sns:us-east-1:1:alerts"}}
                                ],
                            }
                        ]
                    },
                },
            ],
        },
    }


def test_an_updated_model_alerts_again_for_the_instances_it_recreates() -> None:
    """UpdateDetectorModel deletes the instances (§6) and new messages recreate them from
    the initial state; entering Alarm again is a new alarm, not a repeat of the one the
    deleted instance raised under the old definition, and AWS sends it."""
    store, clock = InMemoryStateStore(), ManualClock()
    sent: list[int] = []
    for threshold in (10, 9):
        notifier = InMemoryNotifier()
        engine = DetectorEngine(
            load_detector_model(_alarm_model(threshold)),
            [load_input(INPUT)],
            store,
            clock,
            LocalActionSink(notifier, None, state=store),
        )
        engine.put_message("In", {"id": "k", "v": 11})
        assert engine.describe("k")["detector"]["state"]["stateName"] == "Alarm"
        sent.append(len(notifier.sent))
    assert sent[0] > 0
    assert sent[1] == sent[0]
