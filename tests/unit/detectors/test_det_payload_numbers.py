"""Numbers in a payload that the expression language cannot hold (spec §3: integers past a
decimal's range are undefined, like a decimal overflow)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import ActionRequest, DetectorEngine, load_detector_model, load_input
from cloud.detectors.messages import batch_put_message
from edge.clock import ManualClock

INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "x"}]},
}


class NoActions:
    def execute(self, request: ActionRequest) -> None:
        raise AssertionError(f"no service action was defined: {request}")


def _engine(condition: str) -> DetectorEngine:
    events: list[dict[str, Any]] = [
        {
            "eventName": "check",
            "condition": condition,
            "actions": [{"setVariable": {"variableName": "hit", "value": "1"}}],
        },
        {
            "eventName": "after",
            "condition": "true",
            "actions": [
                {"setVariable": {"variableName": "undefined", "value": "isUndefined($input.In.x)"}}
            ],
        },
    ]
    model = {
        "detectorModelName": "numbers",
        "roleArn": "arn:aws:iam::1:role/r",
        "key": "id",
        "detectorModelDefinition": {
            "initialStateName": "S",
            "states": [{"stateName": "S", "onInput": {"events": events}}],
        },
    }
    return DetectorEngine(
        load_detector_model(model),
        [load_input(INPUT)],
        InMemoryStateStore(),
        ManualClock(1_700_000_000.0),
        NoActions(),
    )


@pytest.mark.parametrize("number", ["9" * 400, "-" + "9" * 400, "1e400", "-1e400"])
@pytest.mark.parametrize(
    "condition",
    ["$input.In.x * 1.5 > 0", "$input.In.x / 2.0 < 0", "$input.In.x + 0.5 == $input.In.x + 0.5"],
)
def test_a_number_past_the_decimal_range_is_undefined_and_the_message_runs(
    number: str, condition: str
) -> None:
    engine = _engine(condition)
    payload = base64.b64encode(f'{{"id":"k","x":{number}}}'.encode()).decode()
    answer = batch_put_message(
        [engine], {"messages": [{"messageId": "m1", "inputName": "In", "payload": payload}]}
    )
    assert answer == {"BatchPutMessageErrorEntries": []}
    variables = engine.describe("k")["detector"]["state"]["variables"]
    assert variables == [{"name": "undefined", "value": "true"}]


def test_the_largest_decimal_is_still_a_number() -> None:
    engine = _engine("$input.In.x * 0.5 > 0")
    payload = base64.b64encode(b'{"id":"k","x":1.7976931348623157e308}').decode()
    batch_put_message(
        [engine], {"messages": [{"messageId": "m1", "inputName": "In", "payload": payload}]}
    )
    variables = engine.describe("k")["detector"]["state"]["variables"]
    assert variables == [{"name": "hit", "value": "1"}, {"name": "undefined", "value": "false"}]
