"""``plantwatch import iotevents --parameter NAME=VALUE``: the values a stack was deployed
with, for a template's parameters and for the pseudo parameters (``AWS::StackName``,
``AWS::Region`` ...), as ``aws cloudformation deploy --parameter-overrides`` takes them. A
name made with ``!Sub "${AWS::StackName}-..."`` is the one the model had on AWS only with the
stack's real name; without it the import uses a stand-in, and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.cli.main import main
from cloud.migrate.iotevents import read_registry

STACK = """\
AWSTemplateFormatVersion: "2010-09-09"
Description: Boiler temperature alarm with e-mail and SMS notification
Parameters:
  HighTemp:
    Type: Number
    Description: no Default; the value is given at deploy time
  InputName:
    Type: String
    Default: BoilerInput
Resources:
  AlarmRole:
    Type: AWS::IAM::Role
  NotifyFn:
    Type: AWS::Lambda::Function
  BoilerInput:
    Type: AWS::IoTEvents::Input
    Properties:
      InputName: !Ref InputName
      InputDefinition:
        Attributes:
          - JsonPath: boilerId
          - JsonPath: temperature
  BoilerAlarm:
    Type: AWS::IoTEvents::AlarmModel
    Properties:
      AlarmModelName: !Sub "${AWS::StackName}-boilerHot"
      RoleArn: !GetAtt AlarmRole.Arn
      Key: boilerId
      Severity: 2
      AlarmRule:
        SimpleRule:
          InputProperty: !Sub "$input.${InputName}.temperature"
          ComparisonOperator: GREATER
          Threshold: !Ref HighTemp
      AlarmEventActions:
        AlarmActions:
          - Sns:
              TargetArn: !Sub "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:boiler"
      AlarmNotification:
        NotificationActions:
          - Action:
              LambdaAction:
                FunctionArn: !GetAtt NotifyFn.Arn
            EmailConfigurations:
              - From: plant@example.com
                Content:
                  Subject: Boiler too hot
                Recipients:
                  To:
                    - SsoIdentity:
                        IdentityStoreId: d-1234567890
                        UserId: user-1
            SmsConfigurations:
              - SenderId: Plant
                Recipients:
                  - SsoIdentity:
                      IdentityStoreId: d-1234567890
                      UserId: user-2
      AlarmCapabilities:
        InitializationConfiguration:
          DisabledOnInitialization: false
        AcknowledgeFlow:
          Enabled: true
"""


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "iot"
    folder.mkdir()
    (folder / "boiler.yaml").write_text(STACK)
    return folder


def _import(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str
) -> tuple[int, str, str]:
    code = main(
        ["import", "iotevents", str(_folder(tmp_path)), "--data", str(tmp_path / "d"), *extra]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_a_parameter_without_default_names_the_option_that_gives_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _import(capsys, tmp_path)
    assert code == 2
    assert "HighTemp" in err and "--parameter HighTemp=" in err, err


def test_the_stack_values_given_make_the_names_and_arns_the_stack_had(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _import(
        capsys,
        tmp_path,
        "--json",
        "--parameter",
        "HighTemp=80",
        "--parameter",
        "AWS::StackName=plant-prod",
        "--parameter",
        "AWS::Region=eu-west-1",
        "--parameter",
        "AWS::AccountId=210987654321",
    )
    assert code == 0, out
    report = json.loads(out)
    (alarm,) = report["alarm_models"]
    assert alarm["name"] == "plant-prod-boilerHot"
    assert not any("stand-in" in w for w in alarm["warnings"]), alarm["warnings"]
    detectors = tmp_path / "d" / "detectors"
    entry = read_registry(detectors)["alarm_models"]["plant-prod-boilerHot"]
    inputs = read_registry(detectors)["inputs"]
    messages = tmp_path / "m.jsonl"
    messages.write_text(
        json.dumps({"inputName": "BoilerInput", "payload": {"boilerId": "b1", "temperature": 85}})
        + "\n"
    )
    code = main(
        [
            "alarms",
            "run",
            str(detectors / entry["file"]),
            str(messages),
            "--input",
            str(detectors / inputs["BoilerInput"]["file"]),
            "--json",
        ]
    )
    run = json.loads(capsys.readouterr().out)
    assert code == 0
    (change,) = [e for e in run["events"] if e["type"] == "change"]
    assert (change["from"], change["to"], change["threshold"]) == ("NORMAL", "ACTIVE", 80)
    targets = [s["target"] for s in change["sent"] if s["action"] == "sns"]
    assert {"targetArn": "arn:aws:sns:eu-west-1:210987654321:boiler"} in targets


def test_a_pseudo_parameter_left_to_its_stand_in_is_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _import(capsys, tmp_path, "--json", "--parameter", "HighTemp=80")
    assert code == 0, out
    (alarm,) = json.loads(out)["alarm_models"]
    notes = "\n".join(alarm["warnings"])
    for name in ("AWS::StackName", "AWS::Region", "AWS::AccountId"):
        assert name in notes and f"--parameter {name}=" in notes, notes
    assert "AWS::Partition" not in notes  # 'aws' is every commercial Region's partition


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("HighTemps=80", "HighTemps"),
        ("HighTemp", "expected NAME=VALUE"),
        ("AWS::NoValue=x", "AWS::NoValue"),
    ],
)
def test_a_parameter_no_template_declares_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, given: str, problem: str
) -> None:
    code, _, err = _import(capsys, tmp_path, "--parameter", "HighTemp=80", "--parameter", given)
    assert code == 2
    assert problem in err, err
    assert not (tmp_path / "d" / "detectors" / "registry.json").exists()
