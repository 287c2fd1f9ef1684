"""``plantwatch detectors analyze``: AWS's analyzer findings with JSON paths and levels."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cloud.cli.main import main
from cloud.detectors.analysis import Finding, analyze
from cloud.detectors.model import load_detector_model, load_input

EXAMPLES = Path(__file__).with_name("data") / "aws_examples"
INPUT = {
    "inputName": "In",
    "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
}
MSG = 'currentInput("In")'


def sv(name: str, value: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": name, "value": value}}


def body(states: list[dict[str, Any]], method: str = "BATCH") -> dict[str, Any]:
    return {
        "detectorModelName": "m",
        "key": "id",
        "evaluationMethod": method,
        "roleArn": "arn:aws:iam::1:role/r",
        "detectorModelDefinition": {"initialStateName": states[0]["stateName"], "states": states},
    }


def findings(states: list[dict[str, Any]], method: str = "BATCH") -> list[Finding]:
    model = load_detector_model(body(states, method), references=False)
    return analyze(model, [load_input(INPUT)])


def brief(found: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.level, f.type, f.path.removeprefix("$.detectorModelDefinition.")) for f in found]


def test_variable_read_before_any_set_is_a_warning_with_its_path() -> None:
    found = findings(
        [
            {
                "stateName": "A",
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "go",
                            "condition": f"{MSG} && $variable.x > 1",
                            "nextState": "B",
                        }
                    ]
                },
            },
            {
                "stateName": "B",
                "onEnter": {"events": [{"eventName": "set", "actions": [sv("x", "1")]}]},
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "back",
                            "condition": f"{MSG} && $variable.x > 5",
                            "nextState": "A",
                        }
                    ]
                },
            },
        ]
    )
    assert brief(found) == [
        ("WARNING", "referenced-data", "states[0].onInput.transitionEvents[0].condition")
    ]
    assert found[0].message == (
        "variable 'x' may be read before any action sets it (it reads as undefined then)"
    )


def test_batch_and_serial_differ_on_reads_in_one_group() -> None:
    states = [
        {
            "stateName": "A",
            "onInput": {
                "events": [
                    {"eventName": "set", "actions": [sv("x", "1")]},
                    {
                        "eventName": "use",
                        "condition": f"{MSG} && $variable.x == 1",
                        "actions": [sv("y", "2")],
                    },
                ]
            },
        }
    ]
    assert brief(findings(states, "BATCH")) == [
        ("WARNING", "referenced-data", "states[0].onInput.events[1].condition")
    ]
    assert findings(states, "SERIAL") == []


def test_deliberate_not_set_yet_checks_are_not_reported() -> None:
    states = [
        {
            "stateName": "A",
            "onInput": {
                "events": [
                    {
                        "eventName": "config",
                        "condition": f"{MSG} && $variable.t != $variable.t",
                        "actions": [sv("t", "$input.In.v")],
                    },
                    {
                        "eventName": "config2",
                        "condition": "isUndefined($variable.u)",
                        "actions": [sv("u", "1")],
                    },
                ]
            },
        }
    ]
    assert findings(states) == []


def test_timers_never_set_and_never_checked() -> None:
    found = findings(
        [
            {
                "stateName": "A",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "arm",
                            "actions": [{"setTimer": {"timerName": "t1", "seconds": 60}}],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "late",
                            "condition": 'timeout("t2")',
                            "actions": [sv("z", "1")],
                        },
                        {
                            "eventName": "beat",
                            "condition": MSG,
                            "actions": [{"resetTimer": {"timerName": "t3"}}],
                        },
                    ]
                },
            }
        ]
    )
    assert brief(found) == [
        ("ERROR", "referenced-data", "states[0].onInput.events[0].condition"),
        ("ERROR", "referenced-data", "states[0].onInput.events[1].actions[0].resetTimer.timerName"),
        ("WARNING", "referenced-data", "states[0].onEnter.events[0].actions[0].setTimer"),
    ]
    assert [f.message for f in found] == [
        "timer 't2' is never set by a setTimer action",
        "timer 't3' is never set by a setTimer action",
        "timer 't1' is set but no condition checks timeout(\"t1\"); its expiry only re-runs onInput",
    ]


def test_incompatible_types_make_a_transition_dead_and_its_target_unreachable() -> None:
    found = findings(
        [
            {
                "stateName": "A",
                "onEnter": {"events": [{"eventName": "init", "actions": [sv("count", "0")]}]},
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "never",
                            "condition": f"{MSG} && $variable.count == 'high'",
                            "nextState": "B",
                        },
                        {"eventName": "maybe", "condition": "$input.In.v > 'x'", "nextState": "A"},
                    ]
                },
            },
            {"stateName": "B"},
            {"stateName": "C"},
        ]
    )
    assert brief(found) == [
        ("ERROR", "data-type", "states[0].onInput.transitionEvents[0].condition"),
        ("WARNING", "structure", "states[1]"),
        ("WARNING", "structure", "states[2]"),
    ]
    assert found[0].message == (
        "can never be true: '==' compares a number with a string; only integers and decimals mix"
    )
    assert "state 'B' is unreachable" in found[1].message


def test_no_input_in_any_condition_is_the_structure_error_aws_reports() -> None:
    """analyze-diagnostic-information, structure: "Detector Model Definition must use at
    least one Input in a condition", an ERROR (fixed before a model can be published)."""
    reads_in_an_action = [
        {
            "stateName": "A",
            "onInput": {"events": [{"eventName": "e", "actions": [sv("x", "$input.In.v")]}]},
        }
    ]
    found = findings(reads_in_an_action)
    assert brief(found) == [("ERROR", "structure", "$.detectorModelDefinition")]
    assert found[0].message == (
        "Detector Model Definition must use at least one Input in a condition"
        ' ($input.<Input>.<path> or currentInput("<Input>"))'
    )
    reads_in_a_condition = copy.deepcopy(reads_in_an_action)
    reads_in_a_condition[0]["onInput"]["events"][0]["condition"] = "$input.In.v > 0"
    assert findings(reads_in_a_condition) == []


def test_published_examples() -> None:
    motor = load_detector_model(EXAMPLES / "motor_detector_model.json")
    assert analyze(motor, [load_input(EXAMPLES / "motor_pressure_input.json")]) == []
    alarm = load_detector_model(EXAMPLES / "simple_alarm_detector_model.json")
    found = analyze(alarm, [load_input(EXAMPLES / "simple_alarm_input.json")])
    # Normal's out_of_range reads the threshold the same group's event sets (BATCH snapshot),
    # so the first message never alarms; and the timers fire into input-reading conditions.
    assert (
        "WARNING",
        "referenced-data",
        "states[1].onInput.transitionEvents[0].condition",
    ) in brief(found)
    assert {f.level for f in found} == {"WARNING"}


def write(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_cli_json_is_aws_analysis_results_and_errors_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    states = [
        {
            "stateName": "A",
            "onInput": {
                "events": [
                    {
                        "eventName": "late",
                        "condition": f'{MSG} && timeout("t")',
                        "actions": [sv("z", "1")],
                    }
                ]
            },
        }
    ]
    model = write(tmp_path, "model.json", body(states))
    inputs = write(tmp_path, "in.json", INPUT)
    code = main(["detectors", "analyze", str(model), "--input", str(inputs), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    doc = json.loads(captured.out)
    assert doc["analysisResults"] == [
        {
            "type": "referenced-data",
            "level": "ERROR",
            "message": "timer 't' is never set by a setTimer action",
            "locations": [
                {"path": "$.detectorModelDefinition.states[0].onInput.events[0].condition"}
            ],
        }
    ]
    assert captured.err.strip() == "model.json: 1 error finding(s)"
    # validate stops at the same problem with one line and exit 2
    assert main(["detectors", "validate", str(model), "--input", str(inputs)]) == 2


def test_cli_reports_no_input_in_a_condition_as_its_finding_where_validate_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model reading its input only in an action: `validate` refuses it as AWS's
    CreateDetectorModel does; `analyze` reports it as AWS's analysis does, one ERROR finding
    and exit 1, not as a model it cannot read."""
    states = [
        {
            "stateName": "A",
            "onInput": {"events": [{"eventName": "e", "actions": [sv("x", "$input.In.v")]}]},
        }
    ]
    model = write(tmp_path, "model.json", body(states))
    inputs = write(tmp_path, "in.json", INPUT)
    code = main(["detectors", "analyze", str(model), "--input", str(inputs), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    [result] = json.loads(captured.out)["analysisResults"]
    assert (result["level"], result["type"]) == ("ERROR", "structure")
    assert main(["detectors", "validate", str(model), "--input", str(inputs)]) == 2
    assert "must use at least one Input in a condition" in capsys.readouterr().err


def test_cli_clean_model_exits_0_and_bad_model_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "detectors",
        "analyze",
        str(EXAMPLES / "motor_detector_model.json"),
        "--input",
        str(EXAMPLES / "motor_pressure_input.json"),
    ]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == "motor_detector_model.json: no findings"
    bad = write(tmp_path, "bad.json", {"detectorModelName": "x"})
    assert main(["detectors", "analyze", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["plantwatch: error: bad.json: $: missing required field 'roleArn'"]
