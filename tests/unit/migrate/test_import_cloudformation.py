"""``plantwatch import iotevents`` takes CloudFormation templates (hand-written, or what the CDK
synthesizes): the ``AWS::IoTEvents::*`` resources become the API bodies AWS would create."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.cli.main import main
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.alarms import load_alarm_model
from cloud.migrate.cloudformation import Resource, iotevents_resources
from cloud.migrate.iotevents import registered
from edge.clock import ManualClock
from edge.errors import UserError


def _join(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


INPUT_REF = {"Ref": "PumpInput4F2A"}


def template() -> dict[str, Any]:
    """A pump watch as the CDK writes one: no names, the input's name by Ref, role by GetAtt."""
    return {
        "Parameters": {"Site": {"Type": "String", "Default": "plant7"}},
        "Resources": {
            "PumpInput4F2A": {
                "Type": "AWS::IoTEvents::Input",
                "Properties": {
                    "InputDefinition": {
                        "Attributes": [{"JsonPath": "pump.id"}, {"JsonPath": "pump.rpm"}]
                    }
                },
            },
            "WatchRole9C1D": {"Type": "AWS::IAM::Role", "Properties": {}},
            "Notify77AB": {"Type": "AWS::Lambda::Function", "Properties": {}},
            "PumpWatch0E3B": {
                "Type": "AWS::IoTEvents::DetectorModel",
                "Properties": {
                    "Key": "pump.id",
                    "EvaluationMethod": "SERIAL",
                    "RoleArn": {"Fn::GetAtt": ["WatchRole9C1D", "Arn"]},
                    "Tags": [{"Key": "site", "Value": {"Ref": "Site"}}],
                    "DetectorModelDefinition": {
                        "InitialStateName": "Idle",
                        "States": [
                            {
                                "StateName": "Idle",
                                "OnInput": {
                                    "Events": [
                                        {
                                            "EventName": "count",
                                            "Condition": _join('currentInput("', INPUT_REF, '")'),
                                            "Actions": [
                                                {
                                                    "SetVariable": {
                                                        "VariableName": "seen",
                                                        "Value": "1",
                                                    }
                                                }
                                            ],
                                        }
                                    ],
                                    "TransitionEvents": [
                                        {
                                            "EventName": "Idle_to_Running",
                                            "Condition": _join(
                                                "$input.", INPUT_REF, ".pump.rpm > 100"
                                            ),
                                            "NextState": "Running",
                                        }
                                    ],
                                },
                            },
                            {
                                "StateName": "Running",
                                "OnEnter": {
                                    "Events": [
                                        {
                                            "EventName": "started",
                                            "Actions": [
                                                {
                                                    "IotTopicPublish": {
                                                        "MqttTopic": {
                                                            "Fn::Sub": "${Site}/pumps/started"
                                                        }
                                                    }
                                                },
                                                {
                                                    "Lambda": {
                                                        "FunctionArn": {
                                                            "Fn::GetAtt": ["Notify77AB", "Arn"]
                                                        }
                                                    }
                                                },
                                                {
                                                    "SetTimer": {
                                                        "TimerName": "spin",
                                                        "DurationExpression": "120",
                                                    }
                                                },
                                            ],
                                        }
                                    ]
                                },
                                "OnInput": {
                                    "TransitionEvents": [
                                        {
                                            "EventName": "Running_to_Idle",
                                            "Condition": 'timeout("spin")',
                                            "NextState": "Idle",
                                        }
                                    ]
                                },
                            },
                        ],
                    },
                },
            },
        },
    }


def _write(folder: Path, document: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "stack.template.json"
    path.write_text(json.dumps(document))
    return folder


def _import(capsys: pytest.CaptureFixture[str], folder: Path, data: Path) -> tuple[int, str]:
    code = main(["import", "iotevents", str(folder), "--data", str(data), "--json"])
    captured = capsys.readouterr()
    return code, captured.out if code == 0 else captured.err


def test_a_cdk_style_template_is_registered_and_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = _import(capsys, _write(tmp_path / "cfn", template()), tmp_path / "data")
    assert code == 0, out
    report = json.loads(out)
    assert [(m["name"], m["key"], m["evaluation_method"]) for m in report["models"]] == [
        ("PumpWatch0E3B", "pump.id", "SERIAL")
    ]
    assert [i["name"] for i in report["inputs"]] == ["PumpInput4F2A"]
    (problem,) = report["cannot_run_locally"]
    assert problem["action"] == "lambda"
    assert "cloudformation:Notify77AB.Arn" in problem["reason"]
    assert problem["path"] == (
        "$.Resources.PumpWatch0E3B.Properties.DetectorModelDefinition.States[1].OnEnter"
        ".Events[0].Actions[1].Lambda"
    )
    model_file, inputs, _ = registered(tmp_path / "data" / "detectors", "PumpWatch0E3B")
    body = json.loads(model_file.read_text())
    assert body["tags"] == [{"key": "site", "value": "plant7"}]
    running = body["detectorModelDefinition"]["states"][1]
    assert running["onEnter"]["events"][0]["actions"][0] == {
        "iotTopicPublish": {"mqttTopic": "plant7/pumps/started"}
    }
    clock = ManualClock(0)
    engine = DetectorEngine(
        load_detector_model(model_file),
        [load_input(p) for p in inputs],
        InMemoryStateStore(),
        clock,
        _Sink(),
    )
    engine.put_message("PumpInput4F2A", {"pump": {"id": "p1", "rpm": 150}})
    assert engine.describe("p1")["detector"]["state"]["stateName"] == "Running"
    clock.advance(120)
    engine.tick()
    assert engine.describe("p1")["detector"]["state"]["stateName"] == "Idle"


class _Sink:
    def execute(self, request: object) -> None:
        pass


def test_a_problem_is_named_in_the_template_own_terms(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = template()
    states = document["Resources"]["PumpWatch0E3B"]["Properties"]["DetectorModelDefinition"][
        "States"
    ]
    states[0]["OnInput"]["TransitionEvents"][0]["NextState"] = "Nowhere"
    code, err = _import(capsys, _write(tmp_path / "cfn", document), tmp_path / "data")
    assert code == 2
    assert err.strip().endswith(
        "cfn/stack.template.json: $.Resources.PumpWatch0E3B.Properties.DetectorModelDefinition"
        ".States[0].OnInput.TransitionEvents[0].NextState: unknown state 'Nowhere' "
        "(expected: Idle, Running)"
    )
    assert not (tmp_path / "data" / "detectors").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["Resources"]["PumpWatch0E3B"]["Properties"].update(
                Key={"Fn::ImportValue": "SharedPumpKey"}
            ),
            "$.Resources.PumpWatch0E3B.Properties.Key.Fn::ImportValue: Fn::ImportValue cannot "
            "be evaluated outside CloudFormation",
        ),
        (
            lambda d: d["Parameters"]["Site"].pop("Default"),
            "Tags[0].Value.Ref: parameter 'Site' has no Default",
        ),
        (
            lambda d: d["Resources"]["PumpWatch0E3B"]["Properties"].update(
                RoleArn={"Ref": "NoSuchRole"}
            ),
            "RoleArn.Ref: 'NoSuchRole' is neither a parameter nor a resource of the template",
        ),
    ],
)
def test_what_only_cloudformation_can_evaluate_is_bad_input_naming_where(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: Any, expected: str
) -> None:
    document = template()
    change(document)
    code, err = _import(capsys, _write(tmp_path / "cfn", document), tmp_path / "data")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert expected in err


def test_a_named_input_is_referenced_by_its_name() -> None:
    document = template()
    document["Resources"]["PumpInput4F2A"]["Properties"]["InputName"] = "pump_telemetry"
    resources = {r.logical_id: r for r in iotevents_resources(document, "t.json")}
    assert resources["PumpInput4F2A"].body["inputName"] == "pump_telemetry"
    definition = resources["PumpWatch0E3B"].body["detectorModelDefinition"]
    assert (
        definition["states"][0]["onInput"]["events"][0]["condition"]
        == 'currentInput("pump_telemetry")'
    )


_segment = st.from_regex(r"[a-z][A-Za-z0-9]{0,8}", fullmatch=True)


@given(st.lists(st.tuples(_segment, st.none() | st.integers(0, 30)), min_size=1, max_size=6))
def test_an_api_path_maps_back_to_pascal_case(parts: list[tuple[str, int | None]]) -> None:
    resource = Resource("model", "M1", {})
    api = "$" + "".join(f".{name}" + (f"[{i}]" if i is not None else "") for name, i in parts)
    mapped = resource.template_path(api)
    expected = "$.Resources.M1.Properties" + "".join(
        f".{name[0].upper()}{name[1:]}" + (f"[{i}]" if i is not None else "") for name, i in parts
    )
    assert mapped == expected


def test_a_template_without_iotevents_resources_is_not_taken_for_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = _write(tmp_path / "cfn", {"Resources": {"B": {"Type": "AWS::S3::Bucket"}}})
    code, err = _import(capsys, folder, tmp_path / "data")
    assert code == 2 and "CloudFormation template with AWS::IoTEvents resources" in err


def test_iotevents_resources_rejects_a_non_object_properties() -> None:
    with pytest.raises(UserError, match=r"\$\.Resources\.X\.Properties: expected an object"):
        iotevents_resources(
            {"Resources": {"X": {"Type": "AWS::IoTEvents::Input", "Properties": [1]}}}, "t.json"
        )


def test_a_missing_property_is_named_on_the_resource(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = template()
    del document["Resources"]["PumpWatch0E3B"]["Properties"]["DetectorModelDefinition"]
    code, err = _import(capsys, _write(tmp_path / "cfn", document), tmp_path / "data")
    assert code == 2
    assert "stack.template.json: $.Resources.PumpWatch0E3B.Properties: missing required" in err


def alarm_resource() -> dict[str, Any]:
    return {
        "Type": "AWS::IoTEvents::AlarmModel",
        "Properties": {
            "AlarmModelName": "pump-overspeed",
            "RoleArn": {"Fn::GetAtt": ["WatchRole9C1D", "Arn"]},
            "Key": "pump.id",
            "Severity": 2,
            "AlarmRule": {
                "SimpleRule": {
                    "InputProperty": _join("$input.", INPUT_REF, ".pump.rpm"),
                    "ComparisonOperator": "GREATER",
                    "Threshold": "3000",
                }
            },
            "AlarmEventActions": {
                "AlarmActions": [{"Sqs": {"QueueUrl": "https://sqs.example/overspeed"}}]
            },
            "AlarmCapabilities": {
                "InitializationConfiguration": {"DisabledOnInitialization": False},
                "AcknowledgeFlow": {"Enabled": True},
            },
        },
    }


def test_an_alarm_model_resource_is_registered_beside_the_detector_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = template()
    document["Resources"]["Overspeed5D1C"] = alarm_resource()
    code, out = _import(capsys, _write(tmp_path / "cfn", document), tmp_path / "data")
    assert code == 0, out
    report = json.loads(out)
    (alarm,) = report["alarm_models"]
    assert (alarm["name"], alarm["key"], alarm["inputs"]) == (
        "pump-overspeed",
        "pump.id",
        ["PumpInput4F2A"],
    )
    assert [(p["model"], p["action"], p["path"]) for p in report["cannot_run_locally"]][-1] == (
        "pump-overspeed",
        "sqs",
        "$.Resources.Overspeed5D1C.Properties.AlarmEventActions.AlarmActions[0].Sqs",
    )
    from cloud.detectors.alarms.model import load_alarm_model

    model = load_alarm_model(Path(alarm["file"]))
    assert model.rule.operator == "GREATER" and not model.disabled_on_initialization
    registry = json.loads((tmp_path / "data" / "detectors" / "registry.json").read_text())
    registered = registry["alarm_models"]["pump-overspeed"]["file"]
    assert registered.startswith("sets/") and registered.endswith(
        "/alarm-models/pump-overspeed.json"
    )
    assert tmp_path / "data" / "detectors" / registered == Path(alarm["file"])


def test_describe_alarm_model_output_alone_is_taken(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "iot"
    folder.mkdir()
    (folder / "input.json").write_text(
        json.dumps(
            {
                "inputName": "Boiler",
                "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "temp"}]},
            }
        )
    )
    (folder / "alarm.json").write_text(
        json.dumps(
            {
                "alarmModelName": "boilerHot",
                "alarmModelArn": "arn:aws:iotevents:us-east-1:1:alarmModel/boilerHot",
                "alarmModelVersion": "3",
                "status": "ACTIVE",
                "statusMessage": None,
                "creationTime": 1700000000.0,
                "lastUpdateTime": 1700000000.0,
                "roleArn": "arn:aws:iam::1:role/r",
                "key": "id",
                "alarmRule": {
                    "simpleRule": {
                        "inputProperty": "$input.Boiler.temp",
                        "comparisonOperator": "GREATER_OR_EQUAL",
                        "threshold": "90",
                    }
                },
            }
        )
    )
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "data")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "boilerHot" in out and "--alarm-model" in out and "--detector-model" not in out
    (stored_file,) = (tmp_path / "data" / "detectors" / "sets").glob("*/alarm-models/*.json")
    assert stored_file.name == "boilerHot.json"
    stored = json.loads(stored_file.read_text())
    assert "alarmModelArn" not in stored and stored["alarmModelName"] == "boilerHot"


SHADOW_ON = "'" + json.dumps({"state": {"desired": {"fan": "ON"}}}) + "'"


def test_a_console_export_without_a_role_is_taken_with_a_placeholder_and_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The console's "Import detector model" file has no roleArn (the console asks for it)."""
    folder = tmp_path / "iot"
    folder.mkdir()
    (folder / "fan.json").write_text(
        json.dumps(
            {
                "detectorModelName": "fanControl",
                "evaluationMethod": "BATCH",
                "detectorModelDefinition": {
                    "initialStateName": "off",
                    "states": [
                        {
                            "stateName": "off",
                            "onInput": {
                                "transitionEvents": [
                                    {
                                        "eventName": "hot",
                                        "condition": "$input.fan.reported.occupied && "
                                        "$input.fan.reported.temp > 25",
                                        "nextState": "on",
                                    }
                                ]
                            },
                        },
                        {
                            "stateName": "on",
                            "onEnter": {
                                "events": [
                                    {
                                        "eventName": "tell",
                                        "condition": "true",
                                        "actions": [
                                            {
                                                "iotTopicPublish": {
                                                    "mqttTopic": "'$aws/things/fan-1/shadow/update'",
                                                    "payload": {
                                                        "contentExpression": SHADOW_ON,
                                                        "type": "JSON",
                                                    },
                                                }
                                            }
                                        ],
                                    }
                                ]
                            },
                        },
                    ],
                },
            }
        )
    )
    (folder / "input.json").write_text(
        json.dumps(
            {
                "inputName": "fan",
                "inputDefinition": {"attributes": [{"jsonPath": "reported"}]},
            }
        )
    )
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d"), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    (model,) = json.loads(out)["models"]
    assert any("no roleArn (a console export)" in w for w in model["warnings"])
    model_file, inputs, _ = registered(tmp_path / "d" / "detectors", "fanControl")
    published: list[Any] = []

    class Sink:
        def execute(self, request: Any) -> None:
            published.append((request.target, request.payload))

    engine = DetectorEngine(
        load_detector_model(model_file),
        [load_input(p) for p in inputs],
        InMemoryStateStore(),
        ManualClock(0),
        Sink(),
    )
    engine.put_message("fan", {"reported": {"occupied": False, "temp": 30}})
    engine.put_message("fan", {"reported": {"occupied": True, "temp": 30}})
    assert engine.describe()["detector"]["state"]["stateName"] == "on"
    assert published == [
        ({"mqttTopic": "$aws/things/fan-1/shadow/update"}, {"state": {"desired": {"fan": "ON"}}})
    ]


def test_quoted_integers_and_booleans_are_typed_as_cloudformation_types_them() -> None:
    document = template()
    model = document["Resources"]["PumpWatch0E3B"]["Properties"]
    running = model["DetectorModelDefinition"]["States"][1]
    running["OnEnter"]["Events"][0]["Actions"][2] = {
        "SetTimer": {"TimerName": "spin", "Seconds": "120"}
    }
    running["OnEnter"]["Events"][0]["Actions"].append(
        {"Sqs": {"QueueUrl": "https://sqs.example/q", "UseBase64": "TRUE"}}
    )
    alarm = alarm_resource()
    alarm["Properties"].update(Severity="2")
    alarm["Properties"]["AlarmCapabilities"] = {
        "InitializationConfiguration": {"DisabledOnInitialization": "false"},
        "AcknowledgeFlow": {"Enabled": "true"},
    }
    document["Resources"]["Overspeed5D1C"] = alarm
    resources = {r.logical_id: r for r in iotevents_resources(document, "t.json")}
    body = resources["PumpWatch0E3B"].body
    actions = body["detectorModelDefinition"]["states"][1]["onEnter"]["events"][0]["actions"]
    assert actions[2] == {"setTimer": {"timerName": "spin", "seconds": 120}}
    assert actions[3]["sqs"]["useBase64"] is True
    load_detector_model(body)  # and AWS's types load
    alarm_body = resources["Overspeed5D1C"].body
    assert alarm_body["severity"] == 2
    assert alarm_body["alarmCapabilities"] == {
        "initializationConfiguration": {"disabledOnInitialization": False},
        "acknowledgeFlow": {"enabled": True},
    }


def test_validate_and_run_take_describe_output_and_a_one_model_template(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = template()
    path = _write(tmp_path / "cfn", document) / "stack.template.json"
    code = main(["detectors", "validate", str(path), "--input", str(path), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out)["detectorModelName"] == "PumpWatch0E3B"
    describe = tmp_path / "describe.json"
    resource = {r.logical_id: r for r in iotevents_resources(document, "t.json")}
    body = resource["PumpWatch0E3B"].body
    describe.write_text(
        json.dumps(
            {
                "detectorModel": {
                    "detectorModelDefinition": body["detectorModelDefinition"],
                    "detectorModelConfiguration": {
                        k: body[k] for k in ("key", "roleArn", "evaluationMethod")
                    }
                    | {"detectorModelName": "pumpWatch", "status": "ACTIVE"},
                }
            }
        )
    )
    describe_input = tmp_path / "describe-input.json"
    describe_input.write_text(
        json.dumps(
            {
                "input": {
                    "inputConfiguration": {"inputName": "PumpInput4F2A", "status": "ACTIVE"},
                    "inputDefinition": resource["PumpInput4F2A"].body["inputDefinition"],
                }
            }
        )
    )
    messages = tmp_path / "m.jsonl"
    messages.write_text(
        json.dumps({"inputName": "PumpInput4F2A", "payload": {"pump": {"id": "p", "rpm": 500}}})
        + "\n"
    )
    run = ["detectors", "run", str(describe), "--input", str(describe_input)]
    code = main([*run, "--messages", str(messages), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    (detector,) = json.loads(out)["detectors"]
    assert detector["detector"]["state"]["stateName"] == "Running"
    # a problem is named in the file's own terms
    broken = json.loads(describe.read_text())
    broken["detectorModel"]["detectorModelDefinition"]["initialStateName"] = "Nowhere"
    describe.write_text(json.dumps(broken))
    assert main(["detectors", "validate", str(describe)]) == 2
    assert "describe.json: $.detectorModel.detectorModelDefinition.initialStateName" in (
        capsys.readouterr().err
    )


def test_validate_on_a_template_with_two_models_points_to_the_import(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = template()
    document["Resources"]["Second"] = document["Resources"]["PumpWatch0E3B"]
    path = _write(tmp_path / "cfn", document) / "stack.template.json"
    assert main(["detectors", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "holds 2 detector models" in err and "plantwatch import iotevents FOLDER" in err


def test_alarms_validate_takes_an_alarm_model_resource(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = template()
    document["Resources"]["Overspeed5D1C"] = alarm_resource()
    path = _write(tmp_path / "cfn", document) / "stack.template.json"
    code = main(["alarms", "validate", str(path), "--input", str(path), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out)["alarmModelName"] == "pump-overspeed"


def test_a_ref_to_an_input_named_by_a_function_gives_the_name_it_evaluates_to() -> None:
    document = template()
    properties = document["Resources"]["PumpInput4F2A"]["Properties"]
    properties["InputName"] = {"Fn::Sub": "${Site}_pump"}
    resources = {r.logical_id: r for r in iotevents_resources(document, "stack.template.json")}
    assert resources["PumpInput4F2A"].body["inputName"] == "plant7_pump"
    model = load_detector_model(resources["PumpWatch0E3B"].body)
    states = model.states["Idle"]
    assert states.transitions[0].condition_text == "$input.plant7_pump.pump.rpm > 100"


@pytest.mark.parametrize("command", ["detectors", "alarms"])
def test_validate_on_a_console_export_without_a_role_says_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    document = template()
    if command == "alarms":
        document["Resources"]["Overspeed5D1C"] = alarm_resource()
    resources = {r.logical_id: r for r in iotevents_resources(document, "t.json")}
    body = resources["Overspeed5D1C" if command == "alarms" else "PumpWatch0E3B"].body
    del body["roleArn"]  # the console's "Import" file carries no role
    export = tmp_path / "export.json"
    export.write_text(json.dumps(body))
    inputs = tmp_path / "input.json"
    inputs.write_text(json.dumps(resources["PumpInput4F2A"].body))
    assert main([command, "validate", str(export), "--input", str(inputs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "export.json: $: missing required field 'roleArn'" in err
    assert "console export" in err and "plantwatch import iotevents" in err


def test_validate_takes_every_input_of_a_template_given_as_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # one stack usually declares every input its models read; `--input stack.json` gives them
    document = template()
    document["Resources"]["MotorInput9A0B"] = {
        "Type": "AWS::IoTEvents::Input",
        "Properties": {
            "InputName": "MotorInput",
            "InputDefinition": {"Attributes": [{"JsonPath": "pump.id"}, {"JsonPath": "amps"}]},
        },
    }
    running = document["Resources"]["PumpWatch0E3B"]["Properties"]["DetectorModelDefinition"]
    running["States"][1]["OnInput"]["TransitionEvents"].append(
        {"EventName": "overload", "Condition": "$input.MotorInput.amps > 40", "NextState": "Idle"}
    )
    path = _write(tmp_path / "cfn", document) / "stack.template.json"
    code = main(["detectors", "validate", str(path), "--input", str(path), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["detectorModelName"] == "PumpWatch0E3B"


@pytest.mark.parametrize(
    ("written", "read"), [(3000, "3000"), (2999.5, "2999.5"), (-1, "-1"), (0, "0")]
)
def test_a_threshold_written_as_a_json_number_is_the_string_cloudformation_passes(
    written: Any, read: str
) -> None:
    # CloudFormation hands every scalar to the resource as text: 3000 and "3000" deploy alike
    document = template()
    alarm = alarm_resource()
    alarm["Properties"]["AlarmRule"]["SimpleRule"]["Threshold"] = written
    document["Resources"]["Overspeed5D1C"] = alarm
    resources = {r.logical_id: r for r in iotevents_resources(document, "t.json")}
    body = resources["Overspeed5D1C"].body
    assert body["alarmRule"]["simpleRule"]["threshold"] == read
    model = load_alarm_model(body)
    assert model.rule.threshold_text == read
