"""Every example of AWS's expression pages, run through a detector model JSON.

Sources: the developer guide's "Expressions" page (operators, built-in, string matching and
bitwise functions, references, substitution templates) and "Expression examples and usage"
(https://docs.aws.amazon.com/iotevents/latest/developerguide/iotevents-expressions.html,
.../expression-usage.html). Each example is the value of a ``setVariable`` that runs on the
documented message; the result is read back through DescribeDetector, whose values are
strings (a string variable is JSON-quoted there).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from detector_models import RecordingSink, event, one_state_model

from cloud.adapters.local import InMemoryStateStore
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from edge.clock import ManualClock
from edge.errors import DetectorModelError

INPUTS = {
    "MyInput": ["a", "status", "value", "value1", "value2", "`_value`"],
    "Command": ["value"],
    "TemperatureInput": ["temperature", "temperatures"],
    "GreenhouseInput": ["temperature", "sensors", "date"],
}


def run(
    input_name: str,
    message: dict[str, Any],
    actions: list[dict[str, Any]],
    condition: str | None = None,
) -> tuple[dict[str, str], list[Any]]:
    """Run *actions* once on *message*; return DescribeDetector's variables and the requests.

    The default condition reads the input, so the model uses it (a model reading no input
    gets no messages).
    """
    condition = condition or f'currentInput("{input_name}")'
    body = one_state_model(event(*actions, condition=condition), name="docs", key=None)
    inputs = [
        load_input(
            {
                "inputName": name,
                "inputDefinition": {"attributes": [{"jsonPath": p} for p in paths]},
            }
        )
        for name, paths in INPUTS.items()
    ]
    sink = RecordingSink()
    engine = DetectorEngine(
        load_detector_model(body, references=False),
        inputs,
        InMemoryStateStore(),
        ManualClock(),
        sink,
    )
    engine.put_message(input_name, message)
    described = engine.describe()["detector"]["state"]["variables"]
    return {v["name"]: v["value"] for v in described}, sink.requests


def sv(name: str, value: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": name, "value": value}}


MY = {"a": None, "status": "offline", "value": 13, "value1": 13, "value2": 5, "_value": 7}


@pytest.mark.parametrize(
    ("input_name", "message", "expression", "described"),
    [
        # Operators
        ("MyInput", MY, "'my' + 'string'", '"mystring"'),
        ("MyInput", MY, "13 | 5", "13"),
        ("MyInput", MY, "13 & 5", "5"),
        ("MyInput", MY, "13 ^ 5", "8"),
        ("MyInput", MY, "~13", "-14"),
        # Built-in functions
        ("MyInput", MY, "isNull($input.MyInput.a)", "true"),
        ("MyInput", MY, "isUndefined($input.MyInput.a)", "false"),
        ("MyInput", MY, 'triggerType("Message")', "true"),
        ("MyInput", MY, 'triggerType("Timer")', "false"),
        ("Command", {"value": "Abort"}, 'currentInput("Command")', "true"),
        (
            "Command",
            {"value": "Abort"},
            'currentInput("Command") && $input.Command.value == "Abort"',
            "true",
        ),
        ("MyInput", MY, 'convert(String, 10.5) + " units"', '"10.5 units"'),
        ("MyInput", MY, "convert(String, true)", '"true"'),
        ("MyInput", MY, "convert(Boolean, 'false')", "false"),
        ("MyInput", MY, "convert(Decimal, '12.25') * 2", "24.5"),
        ("MyInput", MY, "convert('Decimal', '1.5')", "1.5"),
        # String matching functions ("contains" reads .status: the page's example reads
        # .value of a message that has only "status")
        ("MyInput", MY, 'startsWith($input.MyInput.status, "off")', "true"),
        ("MyInput", MY, 'endsWith($input.MyInput.status, "line")', "true"),
        ("MyInput", MY, 'contains($input.MyInput.status, "fli")', "true"),
        # Bitwise functions
        ("MyInput", MY, "bitor($input.MyInput.value1, $input.MyInput.value2)", "13"),
        ("MyInput", MY, "bitand($input.MyInput.value1, $input.MyInput.value2)", "5"),
        ("MyInput", MY, "bitxor($input.MyInput.value1, $input.MyInput.value2)", "8"),
        ("MyInput", MY, "bitnot($input.MyInput.value)", "-14"),
        # References
        ("TemperatureInput", {"temperature": 78.5}, "$input.TemperatureInput.temperature", "78.5"),
        (
            "TemperatureInput",
            {"temperatures": [78.4, 77.9, 78.8]},
            "$input.TemperatureInput.temperatures[2]",
            "78.8",
        ),
        ("MyInput", MY, "$input.MyInput.`_value`", "7"),
        # Usage page: literals in single quotes stay strings (spec section 4 Decision)
        ("MyInput", MY, "'123'", '"123"'),
        ("MyInput", MY, "'true'", '"true"'),
        # Usage page: substitution template and concatenation
        (
            "GreenhouseInput",
            {"temperature": 10.01},
            "'${$input.GreenhouseInput.temperature * 9 / 5 + 32} in Fahrenheit'",
            '"50.018 in Fahrenheit"',
        ),
        (
            "GreenhouseInput",
            {"date": "2000-01-01"},
            "'Greenhouse Temperature Table ' + $input.GreenhouseInput.date",
            '"Greenhouse Temperature Table 2000-01-01"',
        ),
    ],
)
def test_documented_expression(
    input_name: str, message: dict[str, Any], expression: str, described: str
) -> None:
    variables, _ = run(input_name, message, [sv("result", expression)])
    assert variables == {"result": described}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("'${$variable.SensorID}'", "10"),
        ("'Sensor ' + '${$variable.SensorID}'", "Sensor 10"),
        ("'Sensor ${$variable.SensorID + 1}'", "Sensor 11"),
        ("'${$variable.SensorID * 2} and ${$variable.SensorID}'", "20 and 10"),
    ],
)
def test_substitution_templates_of_a_variable_set_to_10(template: str, expected: str) -> None:
    """The page sets ``SensorID`` to ``10`` with a SetVariableAction and templates it."""
    variables, _ = run("MyInput", MY, [sv("SensorID", "10"), sv("text", template)])
    assert variables["text"] == json.dumps(expected)


def test_json_template_from_the_usage_page_is_a_json_payload() -> None:
    """``'{"sensor_id":"${...sensors[0].sensor1}","temperature":"${...}"}'`` as a JSON payload."""
    content = (
        '\'{"sensor_id":"${$input.GreenhouseInput.sensors[0].sensor1}",'
        '"temperature":"${$input.GreenhouseInput.temperature*9/5+32}"}\''
    )
    action = {
        "lambda": {
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "payload": {"contentExpression": content, "type": "JSON"},
        }
    }
    message = {"temperature": 10.01, "sensors": [{"sensor1": "Sensor_1"}]}
    _, (request,) = run("GreenhouseInput", message, [action])
    assert request.payload_type == "JSON"
    assert request.payload == {"sensor_id": "Sensor_1", "temperature": "50.018"}


def test_convert_failure_makes_the_whole_condition_false() -> None:
    """ "If convert() doesn't return a valid value, the expression that it's a part of is
    also invalid ... equivalent to false and won't trigger the actions"."""
    variables, _ = run(
        "MyInput",
        {"status": "n/a"},
        [sv("ran", "true")],
        condition="convert(Decimal, $input.MyInput.status) > 1 || true",
    )
    assert variables == {}


@pytest.mark.parametrize(
    "call",
    [
        "abs(-1)",
        "ceil(1.5)",
        "floor(1.5)",
        "round(1.5)",
        "mod(5, 2)",
        "power(2, 3)",
        "sqrt(4)",
        "substring('abc', 1)",
        "upper('a')",
        "lower('A')",
        "strlen('abc')",
        "length('abc')",
        "isNumeric(1)",
        "isString('a')",
        "isBoolean(true)",
        "timestamp()",
        'Timeout("t")',
    ],
)
def test_a_function_aws_does_not_have_is_refused_naming_it_and_the_field(call: str) -> None:
    """The expressions page lists every built-in; spec section 3 names what AWS lacks."""
    body = one_state_model(event(sv("x", call), condition=None), name="docs", key=None)
    name = call.split("(")[0]
    with pytest.raises(DetectorModelError) as info:
        load_detector_model(body)
    message = str(info.value)
    assert (
        "$.detectorModelDefinition.states[0].onInput.events[0].actions[0].setVariable.value"
        in message
    )
    assert f"unknown function {name!r}" in message
