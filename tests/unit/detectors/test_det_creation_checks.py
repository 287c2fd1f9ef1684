"""CreateDetectorModel's checks of specs/iotevents-contracts.md §3 and §8, one model each:
conditions are Boolean, a variable or input attribute has one type, every timer and
variable used is set somewhere, and the expression lengths stop exactly at AWS's limits."""

from __future__ import annotations

from typing import Any

import pytest
from detector_models import ROLE_ARN

from cloud.detectors import load_detector_model
from edge.errors import DetectorModelError

READ = {"eventName": "read", "condition": 'currentInput("In")', "actions": []}


def model(*events: dict[str, Any], transitions: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {
        "detectorModelName": "m",
        "roleArn": ROLE_ARN,
        "key": "id",
        "detectorModelDefinition": {
            "initialStateName": "A",
            "states": [
                {
                    "stateName": "A",
                    "onInput": {"events": [READ, *events], "transitionEvents": list(transitions)},
                },
                {"stateName": "B"},
            ],
        },
    }


def on(condition: str, *actions: dict[str, Any], name: str = "e") -> dict[str, Any]:
    return {"eventName": name, "condition": condition, "actions": list(actions)}


def set_var(name: str, value: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": name, "value": value}}


def set_timer(name: str, duration: str = "60") -> dict[str, Any]:
    return {"setTimer": {"timerName": name, "durationExpression": duration}}


def sns(content: str) -> dict[str, Any]:
    return {
        "sns": {
            "targetArn": "arn:aws:sns:us-east-1:123456789012:t",
            "payload": {"contentExpression": content, "type": "STRING"},
        }
    }


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("a number as condition", model(on("$input.In.v + 1", set_var("x", "1"))), "must be Boolean"),
    ("a string as condition", model(on("'true'", set_var("x", "1"))), "must be Boolean"),
    ("bitwise on Booleans", model(on("true | false", set_var("x", "1"))), "must be Boolean"),
    (
        "convert to Decimal",
        model(on("convert(Decimal, '1')", set_var("x", "1"))),
        "must be Boolean",
    ),
    (
        "a numeric variable as transition condition",
        model(
            on("true", set_var("x", "1")),
            transitions=({"eventName": "t", "condition": "$variable.x", "nextState": "B"},),
        ),
        "must be Boolean",
    ),
    (
        "a variable set to a number and to a string",
        model(on("true", set_var("x", "1")), on("true", set_var("x", "'a'"), name="f")),
        "variable 'x' is set to a",
    ),
    (
        "a variable set to a number and to a Boolean",
        model(on("true", set_var("x", "1")), on("true", set_var("x", "1 > 0"), name="f")),
        "variable 'x' is set to a",
    ),
    (
        "an attribute used as a number and as a string",
        model(
            on("$input.In.v > 1", set_var("x", "1")),
            on("startsWith($input.In.v, 'a')", set_var("y", "1"), name="f"),
        ),
        "input attribute 'In.v' is used as a",
    ),
    (
        "timeout() of a timer never set",
        model(on('timeout("t")', set_var("x", "1"))),
        "timer 't' is never set",
    ),
    (
        "resetTimer of a timer never set",
        model(on("true", {"resetTimer": {"timerName": "t"}})),
        "timer 't' is never set",
    ),
    (
        "clearTimer of a timer never set",
        model(on("true", {"clearTimer": {"timerName": "t"}})),
        "timer 't' is never set",
    ),
    (
        "a condition reading a variable never set",
        model(on("isUndefined($variable.q)", set_var("x", "1"))),
        "variable 'q' is never set",
    ),
    (
        "a template reading a variable never set",
        model(on("true", sns("'${$variable.q}'"))),
        "variable 'q' is never set",
    ),
    (
        "a duration reading a variable never set",
        model(on("true", set_timer("t", "$variable.q"))),
        "variable 'q' is never set",
    ),
    ("condition of 513 characters", model(on("true" + " " * 509, set_var("x", "1"))), "513"),
    ("value of 1025 characters", model(on("true", set_var("x", "1" + " " * 1024))), "1025"),
    ("duration of 1025 characters", model(on("true", set_timer("t", "60" + " " * 1023))), "1025"),
    ("contentExpression of 1025 bytes", model(on("true", sns("'" + "é" * 511 + "a'"))), "1025"),
]

ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("condition of 512 characters", model(on("true" + " " * 508, set_var("x", "1")))),
    ("value of 1024 characters", model(on("true", set_var("x", "1" + " " * 1023)))),
    ("duration of 1024 characters", model(on("true", set_timer("t", "60" + " " * 1022)))),
    ("contentExpression of 1024 bytes", model(on("true", sns("'" + "é" * 511 + "'")))),
    (
        "an integer and a decimal in one variable",
        model(on("true", set_var("x", "1")), on("true", set_var("x", "2.5"), name="f")),
    ),
    (
        "a timer set in one state and checked in another",
        model(
            on("true", set_timer("t")),
            transitions=({"eventName": "t", "condition": "timeout('t')", "nextState": "B"},),
        ),
    ),
    (
        "19 variables: no limit at creation",
        model(*(on("true", set_var(f"v{i}", str(i)), name=f"e{i}") for i in range(19))),
    ),
]


@pytest.mark.parametrize(("case", "body", "reason"), REFUSED, ids=[c[0] for c in REFUSED])
def test_creation_refuses(case: str, body: dict[str, Any], reason: str) -> None:
    with pytest.raises(DetectorModelError, match=reason):
        load_detector_model(body)


@pytest.mark.parametrize(("case", "body"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_creation_accepts(case: str, body: dict[str, Any]) -> None:
    assert load_detector_model(body).name == "m"
