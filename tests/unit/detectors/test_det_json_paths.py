"""``key`` and ``jsonPath`` take AWS's AttributeJsonPath pattern.

API reference (CreateDetectorModel.key, Attribute.jsonPath, CreateAlarmModel.key):
``^((`[\\w\\- ]+`)|([\\w\\-]+))(\\.((`[\\w- ]+`)|([\\w\\-]+)))*$``. A bare segment is letters,
digits, ``_`` and ``-`` (``motor-id``, ``_raw``, ``1st`` need no backticks there); backticks
add spaces. An expression still needs backticks around such a name.
"""

from __future__ import annotations

from typing import Any

import pytest
from detector_models import event, one_state_model

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.alarms.model import load_alarm_model
from edge.clock import ManualClock
from edge.errors import DetectorModelError


def input_body(*paths: str) -> dict[str, Any]:
    return {
        "inputName": "In",
        "inputDefinition": {"attributes": [{"jsonPath": p} for p in paths]},
    }


def model_body(key: str, condition: str) -> dict[str, Any]:
    return one_state_model(
        event({"setVariable": {"variableName": "seen", "value": "1"}}, condition=condition),
        key=key,
    )


@pytest.mark.parametrize(
    ("json_path", "parts"),
    [
        ("motor-id", ("motor-id",)),
        ("_raw", ("_raw",)),
        ("1st.value", ("1st", "value")),
        ("sensor-data.`motor temp`", ("sensor-data", "motor temp")),
        ("`a-b c_d`", ("a-b c_d",)),
    ],
)
def test_aws_attribute_paths_load(json_path: str, parts: tuple[str, ...]) -> None:
    assert load_input(input_body(json_path)).attributes == (parts,)


@pytest.mark.parametrize(
    "json_path",
    ["a.$b", "a..b", "a.", ".a", "a[0]", "`a.b`", "`a/b`", "a b", "`a`b", "``", "motör"],
)
def test_other_attribute_paths_are_refused_naming_the_field(json_path: str) -> None:
    with pytest.raises(DetectorModelError) as info:
        load_input(input_body(json_path))
    assert "$.inputDefinition.attributes[0].jsonPath:" in str(info.value)
    assert "not a dot-separated field path" in str(info.value)


def test_a_dashed_key_routes_messages_to_instances() -> None:
    model = load_detector_model(model_body("device-info.motor-id", "$input.In.`device-info`.v > 0"))
    engine = DetectorEngine(
        model,
        [load_input(input_body("device-info"))],
        InMemoryStateStore(),
        ManualClock(),
        None,  # type: ignore[arg-type]
    )
    engine.put_message("In", {"device-info": {"motor-id": "Fulton-A32", "v": 1}})
    engine.put_message("In", {"device-info": {"motor-id": "Fulton-A33", "v": 0}})
    assert engine.key_values() == ["Fulton-A32", "Fulton-A33"]
    seen = engine.describe("Fulton-A32")["detector"]["state"]["variables"]
    assert seen == [{"name": "seen", "value": "1"}]


@pytest.mark.parametrize("key", ["a.$b", "motor id", "a..b", "`a.b`"])
def test_a_key_outside_the_pattern_is_refused(key: str) -> None:
    with pytest.raises(DetectorModelError, match=r"\$\.key: .* is not a dot-separated field path"):
        load_detector_model(model_body(key, "$input.In.v > 0"))
    alarm = {
        "alarmModelName": "a",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "key": key,
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$input.In.v",
                "comparisonOperator": "GREATER",
                "threshold": "1",
            }
        },
    }
    with pytest.raises(DetectorModelError, match=r"\$\.key: "):
        load_alarm_model(alarm)


def test_spaces_in_input_keys_as_the_restrictions_page_shows() -> None:
    """ "Spaces are allowed in input keys, but references to the key must be enclosed in
    backticks, both in the definition of the input attribute and when the value of the key
    is referenced in an expression" (detector model restrictions page)."""
    pressure_input = {
        "inputName": "PressureInput",
        "inputDescription": "Pressure readings from a motor",
        "inputDefinition": {
            "attributes": [
                {"jsonPath": "sensorData.`motor pressure`"},
                {"jsonPath": "`motor id`"},
            ]
        },
    }
    body = model_body("`motor id`", "$input.PressureInput.sensorData.`motor pressure` > 50")
    engine = DetectorEngine(
        load_detector_model(body),
        [load_input(pressure_input)],
        InMemoryStateStore(),
        ManualClock(),
        None,  # type: ignore[arg-type]
    )
    engine.put_message(
        "PressureInput",
        {"motor id": "A32", "sensorData": {"motor pressure": 56, "motor temperature": 39}},
    )
    assert engine.key_values() == ["A32"]
    assert engine.describe("A32")["detector"]["state"]["variables"] == [
        {"name": "seen", "value": "1"}
    ]
