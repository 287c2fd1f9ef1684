"""An input attribute has one type (spec section 3, creation checks; AWS's expressions page:
"make sure that all data types that you reference are compatible")."""

from __future__ import annotations

from typing import Any

import pytest

from cloud.detectors import load_detector_model
from edge.errors import DetectorModelError

EVENTS = "$.detectorModelDefinition.states[0].onInput.events"


def body(*conditions: str, value: str | None = None) -> dict[str, Any]:
    events: list[dict[str, Any]] = [
        {"eventName": f"e{i}", "condition": c} for i, c in enumerate(conditions)
    ]
    if value is not None:
        events.append(
            {
                "eventName": "set",
                "actions": [{"setVariable": {"variableName": "x", "value": value}}],
            }
        )
    return {
        "detectorModelName": "m",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "detectorModelDefinition": {
            "initialStateName": "S",
            "states": [{"stateName": "S", "onInput": {"events": events}}],
        },
    }


@pytest.mark.parametrize(
    ("conditions", "value", "used", "first"),
    [
        (("$input.In.v > 1", 'startsWith($input.In.v, "a")'), None, "string", "number"),
        (("$input.In.v == 'on'", "$input.In.v < 3.5"), None, "number", "string"),
        (("$input.In.v == true", "$input.In.v * 2 > 1"), None, "number", "boolean"),
        (("$input.In.v && true",), "$input.In.v - 1", "number", "boolean"),
        (("bitand($input.In.v, 1) == 1",), "'x' + $input.In.v", "string", "number"),
        (("!$input.In.v",), "'${1}' + $input.In.v", "string", "boolean"),
        (("contains($input.In.a.b[0], 'x')", "-$input.In.a.b[0] < 0"), None, "number", "string"),
        # a condition that is the attribute alone tests it as a Boolean
        (("$input.In.v", "$input.In.v > 3"), None, "number", "boolean"),
        (("$input.In.v == 'on'", "$input.In.v"), None, "boolean", "string"),
        (("$input.In.v",), "$input.In.v * 2", "number", "boolean"),
    ],
)
def test_an_attribute_used_as_two_types_is_refused_naming_both_places(
    conditions: tuple[str, ...], value: str | None, used: str, first: str
) -> None:
    with pytest.raises(DetectorModelError) as info:
        load_detector_model(body(*conditions, value=value))
    message = str(info.value)
    assert f"is used as a {used} here and as a {first} at {EVENTS}[0].condition" in message
    assert "an attribute has one type" in message


@pytest.mark.parametrize(
    "conditions",
    [
        ("$input.In.v > 1", "$input.In.v <= 2.5", "$input.In.v * 3 == 6"),
        ('startsWith($input.In.s, "a")', "$input.In.s == 'abc'", "'x' + $input.In.s == 'xa'"),
        ("$input.In.v > 1", "$input.In.w == 'on'"),
        ("$input.In.a.b > 1", "$input.In.a.c == 'on'", "$input.In.a.b[0] == 'x'"),
        # places that do not fix a type do not count
        (
            "$input.In.v > 1",
            "isNull($input.In.v)",
            "$input.In.v == $variable.x",
            "'${$input.In.v}' == 'a'",
        ),
        ("$input.In.v > 1", "convert(Decimal, $input.In.t) > 1", "$input.In.t == $input.In.v"),
        ("$input.In.b", "$input.In.b && $input.In.v > 1", "$input.In.b == false"),
    ],
)
def test_attributes_used_as_one_type_load(conditions: tuple[str, ...]) -> None:
    assert load_detector_model(body(*conditions, value="1"))
