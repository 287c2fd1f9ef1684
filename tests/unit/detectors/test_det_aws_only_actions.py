"""Actions plantwatch records instead of performing (``lambda`` without a local callable,
``sqs``, ``firehose``, ``dynamoDB``, ``dynamoDBv2``, ``iotSiteWise``): never dropped.

docs/detectors.md, "Actions locally": they are kept "with the evaluated fields and payload,
and logged". The detector Lambdas and ``plantwatch up`` give the sink no outbox file, so
the log line is the only record that outlives the process: it must carry what the action
would have sent and where. A long-running stack must not keep every such record in memory.
"""

from __future__ import annotations

import json
import logging

import pytest
from detector_models import action_request

from cloud.adapters.local import InMemoryNotifier
from cloud.detectors.actions import MAX_KEPT_IN_MEMORY, LocalActionSink

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/readings"


def test_the_log_line_of_a_recorded_action_carries_its_target_and_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = LocalActionSink(InMemoryNotifier(), None)
    request = action_request(
        kind="sqs",
        target={"queueUrl": QUEUE, "useBase64": True},
        payload={"pressure": 80, "motor": "Fulton-A32"},
        payload_type="JSON",
    )
    with caplog.at_level(logging.WARNING, logger="cloud.detectors.actions"):
        sink.execute(request)
    [line] = [r.getMessage() for r in caplog.records]
    assert "\n" not in line
    start = line.index("{")
    entry = json.loads(line[start:])
    assert entry["target"] == {"queueUrl": QUEUE, "useBase64": True}
    assert entry["payload"] == {"pressure": 80, "motor": "Fulton-A32"}
    assert entry["kind"] == "sqs" and entry["key_value"] == "pump-01"


def test_a_long_running_sink_keeps_only_the_latest_records_in_memory() -> None:
    sink = LocalActionSink(InMemoryNotifier(), None)
    total = MAX_KEPT_IN_MEMORY + 5
    for n in range(total):
        sink.execute(
            action_request(kind="firehose", target={"deliveryStreamName": "s"}, event_name=f"e{n}")
        )
    assert len(sink.outbox) == MAX_KEPT_IN_MEMORY
    assert sink.outbox[0]["event_name"] == "e5"
    assert sink.outbox[-1]["event_name"] == f"e{total - 1}"
    assert sink.recorded == total


def test_an_action_whose_request_cannot_be_rendered_is_still_recorded() -> None:
    """A target without the field the service needs (a request built by other code than
    the model loader) is recorded all the same, saying why there is no request."""
    sink = LocalActionSink(InMemoryNotifier(), None)
    sink.execute(action_request(kind="sqs", target={}, payload={"v": 1}, payload_type="JSON"))
    [record] = sink.outbox
    assert record["payload"] == {"v": 1} and "queueUrl" in record["aws_refused"]
