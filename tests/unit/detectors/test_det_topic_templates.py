"""``iotTopicPublish`` topics: an expression, or text with its ``${}`` templates expanded.

iotevents-contracts §4 Decision: ``mqttTopic`` is evaluated if it parses as a string
expression, otherwise used literally with ``${}`` expanded. A template's expression may
hold quoted strings of its own (``${'pump-' + $input.In.id}``, as DynamoDB's
``'${$input.GreenhouseInput.temperature * 6 / 5 + 32} in Fahrenheit'`` does): those are
expanded too, not sent as they are written.
"""

from __future__ import annotations

from typing import Any

import pytest
from detector_models import RecordingSink, event, one_state_model

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from edge.clock import ManualClock

INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "line"}]},
}


def published_to(topic: str, **message: Any) -> list[str]:
    sink = RecordingSink()
    engine = DetectorEngine(
        load_detector_model(one_state_model(event({"iotTopicPublish": {"mqttTopic": topic}}))),
        [load_input(INPUT)],
        InMemoryStateStore(),
        ManualClock(),
        sink,
    )
    engine.put_message("In", {"id": "k1", **message})
    return [r.target["mqttTopic"] for r in sink.requests]


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("plant/${'pump-' + $input.In.id}/cmd", "plant/pump-k1/cmd"),
        (
            "$aws/things/${'pump-' + $input.In.id}/shadow/update",
            "$aws/things/pump-k1/shadow/update",
        ),
        ("plant/${$input.In.line}/${'x'}", "plant/L2/x"),
    ],
)
def test_a_template_holding_quoted_strings_is_expanded(topic: str, expected: str) -> None:
    assert published_to(topic, line="L2") == [expected]


def test_a_quote_outside_any_template_is_part_of_the_topic() -> None:
    assert published_to("o'brien/${$input.In.id}") == ["o'brien/${$input.In.id}"]
