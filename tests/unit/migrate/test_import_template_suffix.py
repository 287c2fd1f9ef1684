"""A CloudFormation template saved as ``NAME.template`` (the suffix CloudFormation's own
sample templates and many repositories use), JSON or YAML inside, is read by ``import
iotevents`` like a ``.json`` or ``.yaml`` one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.cli.main import main


def _template(model: str, input_name: str) -> dict:
    return {
        "Resources": {
            "In": {
                "Type": "AWS::IoTEvents::Input",
                "Properties": {
                    "InputName": input_name,
                    "InputDefinition": {"Attributes": [{"JsonPath": "id"}, {"JsonPath": "temp"}]},
                },
            },
            "Watch": {
                "Type": "AWS::IoTEvents::DetectorModel",
                "Properties": {
                    "DetectorModelName": model,
                    "RoleArn": "arn:aws:iam::123456789012:role/events",
                    "Key": "id",
                    "DetectorModelDefinition": {
                        "InitialStateName": "ok",
                        "States": [
                            {
                                "StateName": "ok",
                                "OnInput": {
                                    "TransitionEvents": [
                                        {
                                            "EventName": "hot",
                                            "Condition": f"$input.{input_name}.temp > 40",
                                            "NextState": "hot",
                                        }
                                    ]
                                },
                            },
                            {"StateName": "hot"},
                        ],
                    },
                },
            },
        }
    }


YAML = """\
AWSTemplateFormatVersion: 2010-09-09
Resources:
  In:
    Type: AWS::IoTEvents::Input
    Properties:
      InputName: PumpIn
      InputDefinition:
        Attributes:
          - JsonPath: id
          - JsonPath: temp
  Watch:
    Type: AWS::IoTEvents::DetectorModel
    Properties:
      DetectorModelName: !Sub "pump-${AWS::Partition}"
      RoleArn: arn:aws:iam::123456789012:role/events
      Key: id
      DetectorModelDefinition:
        InitialStateName: ok
        States:
          - StateName: ok
            OnInput:
              TransitionEvents:
                - EventName: hot
                  Condition: $input.PumpIn.temp > 40
                  NextState: hot
          - StateName: hot
"""


def test_dot_template_files_are_read_json_or_yaml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "iot"
    folder.mkdir()
    (folder / "fan.template").write_text(json.dumps(_template("fan", "FanIn"), indent=2))
    (folder / "pump.template").write_text(YAML)
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d"), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert sorted(m["name"] for m in json.loads(out)["models"]) == ["fan", "pump-aws"]
