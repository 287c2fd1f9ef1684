"""A ``lambda`` action run by a registered local callable gets the event Lambda would give.

§4: the action's payload is the function's event. Lambda's Invoke takes the payload as
JSON and the runtime hands the handler the parsed value, so a STRING payload holding JSON
arrives as that JSON (an object, not its text), and one that is not JSON is refused by
Lambda: the callable is not called, and the failure is logged, naming why.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from detector_models import event, one_state_model

from cloud.adapters.local import InMemoryNotifier, InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from edge.clock import ManualClock

ARN = "arn:aws:lambda:us-east-1:123456789012:function:work-order"
INPUT = {"inputName": "In", "inputDefinition": {"attributes": [{"jsonPath": "id"}]}}


def invoked(payload: dict[str, str] | None) -> list[Any]:
    events: list[Any] = []
    fields: dict[str, Any] = {"functionArn": ARN}
    if payload is not None:
        fields["payload"] = payload
    sink = LocalActionSink(InMemoryNotifier(), None, lambdas={ARN: events.append})
    engine = DetectorEngine(
        load_detector_model(one_state_model(event({"lambda": fields}))),
        [load_input(INPUT)],
        InMemoryStateStore(),
        ManualClock(),
        sink,
    )
    engine.put_message("In", {"id": "k1"})
    return events


def test_the_default_payload_is_the_event() -> None:
    [received] = invoked(None)
    assert received["payload"]["detector"]["keyValue"] == "k1"


def test_a_json_payload_is_the_event() -> None:
    assert invoked({"contentExpression": '\'{"order": "${$input.In.id}"}\'', "type": "JSON"}) == [
        {"order": "k1"}
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('\'{"order": "${$input.In.id}"}\'', {"order": "k1"}),
        ("'[1, 2]'", [1, 2]),
        ("'\"k1\"'", "k1"),
    ],
)
def test_a_string_payload_holding_json_arrives_parsed(content: str, expected: Any) -> None:
    assert invoked({"contentExpression": content, "type": "STRING"}) == [expected]


def test_a_string_payload_that_is_not_json_is_refused_as_lambda_refuses_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        events = invoked({"contentExpression": "'order ${$input.In.id}'", "type": "STRING"})
    assert events == []
    assert any(
        "not JSON" in (str(r.exc_info and r.exc_info[1]) + r.getMessage()) for r in caplog.records
    )
