"""CloudFormation conditions in an IoT Events template: the ``Conditions`` section
(``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``, ``Condition``) is evaluated on the
parameters' values (``--parameter`` or ``Default``), ``Fn::If`` takes its branch,
``AWS::NoValue`` removes the property or list item it stands for, and a resource whose
``Condition`` is false is not part of the stack, so it is not imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.cli.main import main
from cloud.migrate.iotevents import registered
from tests.detector_models import PUMP_INPUT_YAML, replay_registered

STACK = (
    """\
Parameters:
  Env:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
  Quiet: !And [!Condition NotProd, !Or [!Equals [!Ref "AWS::Region", us-east-1], !Equals [a, b]]]
Resources:
"""
    + PUMP_INPUT_YAML
    + """\
  PumpWatch:
    Type: AWS::IoTEvents::DetectorModel
    Properties:
      DetectorModelName: !If [IsProd, pump-watch, pump-watch-dev]
      DetectorModelDescription: !If [IsProd, !Ref "AWS::NoValue", a test copy]
      RoleArn: arn:aws:iam::123456789012:role/events
      Key: pumpId
      DetectorModelDefinition:
        InitialStateName: Idle
        States:
          - StateName: Idle
            OnInput:
              TransitionEvents:
                - EventName: spin
                  Condition: $input.PumpInput.rpm > 100
                  NextState: Running
          - StateName: Running
            OnEnter:
              Events:
                - EventName: tell
                  Condition: "true"
                  Actions:
                    - !If
                      - IsProd
                      - Sns:
                          TargetArn: arn:aws:sns:us-east-1:123456789012:pumps
                      - !Ref AWS::NoValue
                    - IotTopicPublish:
                        MqttTopic: !If [Quiet, quiet/pump, !Sub "${Env}/pump"]
  ProdAlarm:
    Type: AWS::IoTEvents::AlarmModel
    Condition: IsProd
    Properties:
      AlarmModelName: rpmHigh
      RoleArn: arn:aws:iam::123456789012:role/events
      Key: pumpId
      AlarmRule:
        SimpleRule:
          InputProperty: $input.PumpInput.rpm
          ComparisonOperator: GREATER
          Threshold: "3000"
"""
)


def _import(capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str) -> dict[str, Any]:
    folder = tmp_path / "iot"
    folder.mkdir()
    (folder / "pumps.yaml").write_text(STACK)
    code = main(
        ["import", "iotevents", str(folder), "--data", str(tmp_path / "d"), "--json", *extra]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def _run(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> list[dict[str, Any]]:
    message = {"inputName": "PumpInput", "payload": {"pumpId": "p1", "rpm": 150}}
    run = replay_registered(tmp_path / "d", name, message, capsys)
    return [e for e in run["events"] if e["type"] == "action"]


def _stored(tmp_path: Path, name: str) -> dict[str, Any]:
    found = registered(tmp_path / "d" / "detectors", name)
    assert found is not None
    return json.loads(found[0].read_text())


def test_the_default_parameters_pick_the_false_branches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = _import(capsys, tmp_path)
    assert [m["name"] for m in report["models"]] == ["pump-watch-dev"]
    assert report["alarm_models"] == []  # its Condition is false: not in the stack
    assert _stored(tmp_path, "pump-watch-dev")["detectorModelDescription"] == "a test copy"
    actions = _run(capsys, tmp_path, "pump-watch-dev")
    assert [(a["action"], a["target"]) for a in actions] == [
        ("iotTopicPublish", {"mqttTopic": "quiet/pump"})
    ]


def test_a_parameter_given_picks_the_true_branches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = _import(capsys, tmp_path, "--parameter", "Env=prod")
    assert [m["name"] for m in report["models"]] == ["pump-watch"]
    assert [a["name"] for a in report["alarm_models"]] == ["rpmHigh"]
    assert "detectorModelDescription" not in _stored(tmp_path, "pump-watch")
    actions = _run(capsys, tmp_path, "pump-watch")
    assert [(a["action"], a["target"]) for a in actions] == [
        ("sns", {"targetArn": "arn:aws:sns:us-east-1:123456789012:pumps"}),
        ("iotTopicPublish", {"mqttTopic": "prod/pump"}),
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "!If [IsProd, pump-watch, pump-watch-dev]",
            "!If [IsStaging, pump-watch, pump-watch-dev]",
            "$.Resources.PumpWatch.Properties.DetectorModelName.Fn::If: condition 'IsStaging'"
            " is not in the template's Conditions",
        ),
        (
            "!If [IsProd, pump-watch, pump-watch-dev]",
            "!If [IsProd, pump-watch]",
            "$.Resources.PumpWatch.Properties.DetectorModelName.Fn::If: expected"
            " [condition, value if true, value if false]",
        ),
        (
            "IsProd: !Equals [!Ref Env, prod]",
            "IsProd: !Equals [!Ref Env]",
            "$.Conditions.IsProd.Fn::Equals: expected [value, value]",
        ),
        (
            "Condition: IsProd\n",
            "Condition: IsStaging\n",
            "$.Resources.ProdAlarm.Condition: condition 'IsStaging' is not in the template's"
            " Conditions",
        ),
    ],
)
def test_a_condition_that_cannot_be_evaluated_is_named_where_it_is(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in STACK
    folder = tmp_path / "iot"
    folder.mkdir()
    (folder / "pumps.yaml").write_text(STACK.replace(old, new))
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert f"iot/pumps.yaml: {expected}" in err, err
