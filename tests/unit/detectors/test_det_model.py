"""Loading CreateDetectorModel / CreateInput bodies: errors name the file and the JSON path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cloud.detectors import (
    check_references,
    default_detector_paths,
    load_detector_model,
    load_input,
)
from cloud.detectors.model import InputDefinition
from edge.errors import DetectorModelError, UserError

DATA = Path(__file__).with_name("data")
PRESSURE = {
    "inputName": "Pressure",
    "inputDefinition": {
        "attributes": [{"jsonPath": "motorid"}, {"jsonPath": "sensorData.pressure"}]
    },
}
FLOW = {"inputName": "Flow", "inputDefinition": {"attributes": [{"jsonPath": "rate"}]}}


def base_model() -> dict[str, Any]:
    return {
        "detectorModelName": "motor",
        "key": "motorid",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "detectorModelDefinition": {
            "initialStateName": "A",
            "states": [
                {
                    "stateName": "A",
                    "onInput": {
                        "events": [
                            {
                                "eventName": "e",
                                "condition": "$input.Pressure.sensorData.pressure > 10",
                                "actions": [{"setVariable": {"variableName": "v", "value": "1"}}],
                            }
                        ],
                        "transitionEvents": [
                            {"eventName": "t", "condition": "$variable.v == 1", "nextState": "B"}
                        ],
                    },
                },
                {"stateName": "B"},
                {
                    "stateName": "C",
                    "onInput": {"events": [{"eventName": "x", "condition": "true"}]},
                },
            ],
        },
    }


def error_of(body: dict[str, Any], inputs: list[dict[str, Any]] | None = None, **kw: Any) -> str:
    with pytest.raises(DetectorModelError) as info:
        model = load_detector_model(body, source="model.json", **kw)
        check_references(model, [load_input(i) for i in (inputs or [PRESSURE, FLOW])])
    assert isinstance(info.value, UserError)
    return str(info.value)


def test_unknown_input_names_path_and_expected_inputs() -> None:
    body = base_model()
    body["detectorModelDefinition"]["states"][2]["onInput"]["events"][0]["condition"] = (
        "$input.Temp.value > 3"
    )
    assert error_of(body) == (
        "model.json: $.detectorModelDefinition.states[2].onInput.events[0].condition:"
        " unknown input 'Temp' (expected: Pressure, Flow)"
    )


@pytest.mark.parametrize("path", ["temperature", "sensorData.humidity"])
def test_an_undeclared_attribute_is_a_warning_at_any_depth(path: str) -> None:
    """§1 Decision: AWS refuses unknown inputs, not undeclared paths of a known one."""
    body = base_model()
    cond = body["detectorModelDefinition"]["states"][0]["onInput"]["events"][0]
    cond["condition"] = f"$input.Pressure.{path} > 3"
    model = load_detector_model(body)
    warnings = check_references(model, [load_input(PRESSURE)])
    assert any(f"Pressure.{path} is not a declared attribute" in w for w in warnings)


def test_the_undeclared_attribute_warning_says_what_happens_at_run_time() -> None:
    """§1 Decision: an undeclared path "warns at creation and is *undefined* at run time",
    even when a message carries the field; the warning says so, not "undefined if absent"
    (which would tell the author the field is read when it is there)."""
    body = base_model()
    cond = body["detectorModelDefinition"]["states"][0]["onInput"]["events"][0]
    cond["condition"] = "$input.Pressure.temperature > 3"
    [warning] = check_references(load_detector_model(body), [load_input(PRESSURE)])
    assert warning.endswith(
        "$.detectorModelDefinition.states[0].onInput.events[0].condition:"
        " Pressure.temperature is not a declared attribute;"
        " it reads undefined at run time, even when a message carries it"
    )


def test_current_input_of_an_unknown_input_is_an_error() -> None:
    body = base_model()
    body["detectorModelDefinition"]["states"][2]["onInput"]["events"][0]["condition"] = (
        'currentInput("Nope")'
    )
    assert "states[2].onInput.events[0].condition: unknown input 'Nope'" in error_of(body)


def test_a_model_that_reads_no_input_anywhere_is_refused() -> None:
    """AWS refuses a detector model with no input in any condition ("Detector Model
    Definition must use at least one Input in a condition", analyze-diagnostic-information,
    structure; spec §3 creation checks). A model whose expressions read no input at all
    would never get a message, since BatchPutMessage routes a message only to the models
    using its input (§1): it is refused when it loads, not run to drop every message."""
    body = base_model()
    body["detectorModelDefinition"]["states"][0]["onInput"]["events"][0]["condition"] = "true"
    assert error_of(body) == (
        "model.json: $.detectorModelDefinition: no expression reads an input"
        ' ($input.<Input>.<path> or currentInput("<Input>")), so no message would ever'
        " reach the model; AWS requires an input in at least one condition"
    )


def test_a_model_that_reads_its_input_only_in_actions_is_refused_as_aws_refuses_it() -> None:
    """AWS's structure check refuses it ("Detector Model Definition must use at least one
    Input in a condition"; spec §3 creation checks: some condition references an input), so
    CreateDetectorModel here refuses it too. Messages would reach it, so a lenient model
    (``--lenient``, outside AWS's checks) still runs, with a warning."""
    body = base_model()
    event = body["detectorModelDefinition"]["states"][0]["onInput"]["events"][0]
    event["condition"] = "true"
    event["actions"] = [
        {"setVariable": {"variableName": "v", "value": "$input.Pressure.sensorData.pressure"}}
    ]
    assert error_of(body) == (
        "model.json: $.detectorModelDefinition: Detector Model Definition must use at least"
        " one Input in a condition (the model reads its input only in actions; --lenient runs"
        " it anyway)"
    )
    model = load_detector_model(body, source="model.json", strict=False)
    assert check_references(model, [load_input(PRESSURE)]) == [
        "model.json: no condition references an input"
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda b: b["detectorModelDefinition"]["states"][0]["onInput"]["transitionEvents"][
                0
            ].update(nextState="Z"),
            "$.detectorModelDefinition.states[0].onInput.transitionEvents[0].nextState: unknown state 'Z' (expected: A, B, C)",
        ),
        (
            lambda b: b["detectorModelDefinition"].update(initialStateName="Q"),
            "$.detectorModelDefinition.initialStateName: unknown state 'Q'",
        ),
        (
            lambda b: b["detectorModelDefinition"]["states"][0]["onInput"]["events"][0]["actions"][
                0
            ].update(clearTimer={"timerName": "t"}),
            "$.detectorModelDefinition.states[0].onInput.events[0].actions[0]: an action holds exactly one action key",
        ),
        (
            lambda b: b["detectorModelDefinition"]["states"][0]["onInput"]["events"][0][
                "actions"
            ].append({"setTimer": {"timerName": "t", "seconds": 30}}),
            "actions[1].setTimer.seconds: 30 s; a timer must be 60-31622400 s",
        ),
        *(
            (
                lambda b, text=text: b["detectorModelDefinition"]["states"][0]["onInput"]["events"][
                    0
                ]["actions"].append({"setTimer": {"timerName": "t", "durationExpression": text}}),
                "actions[1].setTimer.durationExpression: must be a number of seconds",
            )
            for text in ("'nan'", "'inf'", "'1e400'", "'1_000'", "'\u0661\u0662\u0660'", "'x'")
        ),
        (
            lambda b: b["detectorModelDefinition"]["states"][0]["onInput"]["events"][0].update(
                condition="abs($input.Pressure.sensorData.pressure) > 1"
            ),
            "events[0].condition: unknown function 'abs'",
        ),
        (
            lambda b: b["detectorModelDefinition"]["states"][0]["onInput"]["events"][0].update(
                condition="1 + 2"
            ),
            "events[0].condition: must be Boolean, not integer",
        ),
        (
            lambda b: b["detectorModelDefinition"]["states"][0]["onInput"]["transitionEvents"][
                0
            ].update(condition="$variable.nope == 1"),
            "transitionEvents[0].condition: variable 'nope' is never set",
        ),
        (
            lambda b: b["detectorModelDefinition"]["states"][0]["onInput"]["transitionEvents"][
                0
            ].update(condition='timeout("hb")'),
            "timer 'hb' is never set",
        ),
        (
            lambda b: b["detectorModelDefinition"]["states"][0]["onInput"]["events"][0][
                "actions"
            ].append({"sns": {"targetArn": "arn:aws:sns:us-east-1:1:t.fifo"}}),
            "actions[1].sns.targetArn: FIFO topics are not supported",
        ),
        (
            lambda b: b["detectorModelDefinition"]["states"][0]["onInput"]["events"][0][
                "actions"
            ].append({"publish": {}}),
            "actions[1].publish: unknown action",
        ),
        (
            lambda b: b["detectorModelDefinition"]["states"][2]["onInput"]["events"][0].update(
                actions=[{"setVariable": {"variableName": "v", "value": "'one'"}}]
            ),
            "states[2].onInput.events[0].actions[0].setVariable.value: variable 'v' is set to a string here and a number at $.detectorModelDefinition.states[0]",
        ),
        *(
            (
                # analyze-diagnostic-information, expression-syntax: "The defined payload type
                # is JSON ... The evaluated result can't be a Boolean or number."
                lambda b, text=text: b["detectorModelDefinition"]["states"][0]["onInput"]["events"][
                    0
                ]["actions"].append(
                    {
                        "iotTopicPublish": {
                            "mqttTopic": "t",
                            "payload": {"contentExpression": text, "type": "JSON"},
                        }
                    }
                ),
                f"actions[1].iotTopicPublish.payload.contentExpression: a JSON payload must"
                f" evaluate to a string holding JSON, not {kind}",
            )
            for text, kind in (("5", "integer"), ("2.5 * 2", "decimal"), ("1 < 2", "Boolean"))
        ),
        (lambda b: b.update(evaluationMethod="PARALLEL"), "$.evaluationMethod: 'PARALLEL'"),
        (lambda b: b.pop("roleArn"), "$: missing required field 'roleArn'"),
        (lambda b: b.update(detectorModelName="bad name"), "$.detectorModelName: 'bad name'"),
        (
            lambda b: b["detectorModelDefinition"]["states"].append({"stateName": "A"}),
            "$.detectorModelDefinition.states[3].stateName: duplicate state 'A'",
        ),
        (
            lambda b: b["detectorModelDefinition"]["states"][0]["onInput"]["events"][0].update(
                condition="$input.Pressure.sensorData.pressure >"
            ),
            "events[0].condition: unexpected end of expression at position 37",
        ),
    ],
)
def test_structural_errors_name_the_json_path(mutate: Any, expected: str) -> None:
    body = base_model()
    mutate(body)
    message = error_of(body)
    assert message.startswith("model.json: ")
    assert expected in message


def test_limits_apply_in_strict_mode_only() -> None:
    body = base_model()
    states = body["detectorModelDefinition"]["states"]
    states.extend({"stateName": f"S{i}"} for i in range(20))
    assert "$.detectorModelDefinition.states: 23 states; at most 20 allowed" in error_of(body)
    model = load_detector_model(body, strict=False)
    assert len(model.states) == 23


def test_condition_length_limit() -> None:
    body = base_model()
    long_condition = " || ".join(["$input.Pressure.sensorData.pressure > 1"] * 14)
    body["detectorModelDefinition"]["states"][0]["onInput"]["events"][0]["condition"] = (
        long_condition
    )
    assert "characters; at most 512 allowed" in error_of(body)
    load_detector_model(body, strict=False)


def test_invalid_json_file_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "detectorModelName": "x",\n  oops\n}')
    with pytest.raises(DetectorModelError, match=r"^broken.json: not valid JSON: .*line 3"):
        load_detector_model(path)


def test_input_validation() -> None:
    with pytest.raises(DetectorModelError, match=r"\$\.inputName: '1x' does not match"):
        load_input({"inputName": "1x", "inputDefinition": {"attributes": [{"jsonPath": "a"}]}})
    with pytest.raises(DetectorModelError, match=r"attributes\[1\]\.jsonPath: 'a\.\$b'"):
        load_input(
            {
                "inputName": "X",
                "inputDefinition": {"attributes": [{"jsonPath": "a"}, {"jsonPath": "a.$b"}]},
            }
        )
    loaded = load_input(
        {
            "inputName": "X",
            "inputDefinition": {"attributes": [{"jsonPath": "sensorData.`motor temp`"}]},
        }
    )
    assert loaded == InputDefinition("X", (("sensorData", "motor temp"),))


def test_spec_heartbeat_example_loads() -> None:
    model = load_detector_model(DATA / "motor_heartbeat.json")
    check_references(model, [load_input(DATA / "pressure_input.json")])
    assert model.key == "motorid" and model.evaluation_method == "BATCH"
    assert list(model.states) == ["Online", "Offline"]


def test_default_model_and_input_validate_together() -> None:
    model_path, input_path = default_detector_paths()
    model = load_detector_model(model_path)
    warnings = check_references(model, [load_input(input_path)])
    assert warnings == []
    assert model.key == "asset"
    assert set(model.states) == {"Normal", "Alarm", "Stale"}
    raw = json.loads(model_path.read_text())
    assert raw["detectorModelName"] == "equipment_anomaly"


def test_mutating_the_input_dict_does_not_change_the_model() -> None:
    body = base_model()
    model = load_detector_model(copy.deepcopy(body))
    body["detectorModelDefinition"]["states"].clear()
    assert list(model.states) == ["A", "B", "C"]


def _hostile(where: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "detectorModelName": "m",
        "roleArn": "arn:aws:iam::1:role/r",
        "detectorModelDefinition": {
            "initialStateName": "S",
            "states": [
                {"stateName": "S", "onInput": {"events": [{"eventName": "e", "condition": "true"}]}}
            ],
        },
    }
    event = body["detectorModelDefinition"]["states"][0]["onInput"]["events"][0]
    if where == "field":
        body[name] = 1
    elif where == "action":
        event["actions"] = [{name: {}}]
    elif where == "payload field":
        event["actions"] = [{"sns": {"targetArn": "arn:aws:sns:us-east-1:1:t", name: 1}}]
    else:
        body["detectorModelDefinition"]["states"][0]["stateName"] = name
    return body


@pytest.mark.parametrize("where", ["field", "action", "payload field", "state"])
@pytest.mark.parametrize("brk", ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028"])
def test_a_name_holding_a_line_break_is_shown_escaped_on_one_line(where: str, brk: str) -> None:
    """A JSON key or state name from the file is part of the error's path or message; its
    line break is escaped, so the error stays one line in a log or an API answer."""
    with pytest.raises(DetectorModelError) as caught:
        load_detector_model(_hostile(where, f"bad{brk}name"), source="m.json")
    message = str(caught.value)
    assert len(message.splitlines()) == 1, message
    assert "bad" + repr(brk)[1:-1] + "name" in message, message  # the break as Python escapes it
