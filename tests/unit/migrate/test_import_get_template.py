"""``aws cloudformation get-template --stack-name STACK > stack.json``: how a deployed
stack's template is saved when its source is gone. The output wraps the template as
``{"TemplateBody": ..., "StagesAvailable": [...]}``: the template itself when it was JSON, its
text when it was YAML. ``import iotevents`` takes either, as it takes the template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.cli.main import main
from tests.detector_models import replay_registered

YAML_STACK = """\
Parameters:
  Site:
    Type: String
    Default: plant7
Resources:
  FanInput:
    Type: AWS::IoTEvents::Input
    Properties:
      InputName: FanInput
      InputDefinition:
        Attributes:
          - JsonPath: fanId
          - JsonPath: temp
  FanWatch:
    Type: AWS::IoTEvents::DetectorModel
    Properties:
      DetectorModelName: !Sub "${Site}-fan"
      RoleArn: arn:aws:iam::123456789012:role/events
      Key: fanId
      DetectorModelDefinition:
        InitialStateName: ok
        States:
          - StateName: ok
            OnInput:
              TransitionEvents:
                - EventName: hot
                  Condition: $input.FanInput.temp > 40
                  NextState: hot
          - StateName: hot
"""


def _json_stack() -> dict:
    return {
        "Resources": {
            "FanInput": {
                "Type": "AWS::IoTEvents::Input",
                "Properties": {
                    "InputName": "FanInput",
                    "InputDefinition": {
                        "Attributes": [{"JsonPath": "fanId"}, {"JsonPath": "temp"}]
                    },
                },
            },
            "FanWatch": {
                "Type": "AWS::IoTEvents::DetectorModel",
                "Properties": {
                    "DetectorModelName": "plant7-fan",
                    "RoleArn": "arn:aws:iam::123456789012:role/events",
                    "Key": "fanId",
                    "DetectorModelDefinition": {
                        "InitialStateName": "ok",
                        "States": [
                            {
                                "StateName": "ok",
                                "OnInput": {
                                    "TransitionEvents": [
                                        {
                                            "EventName": "hot",
                                            "Condition": "$input.FanInput.temp > 40",
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


@pytest.mark.parametrize("body", ["yaml", "json"])
def test_get_template_output_is_imported_and_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, body: str
) -> None:
    folder = tmp_path / "iot"
    folder.mkdir()
    template = YAML_STACK if body == "yaml" else _json_stack()
    output = {"TemplateBody": template, "StagesAvailable": ["Original", "Processed"]}
    (folder / "stack.json").write_text(json.dumps(output, indent=4))
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d"), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert [m["name"] for m in json.loads(out)["models"]] == ["plant7-fan"]
    message = {"inputName": "FanInput", "payload": {"fanId": "f1", "temp": 45}}
    run = replay_registered(tmp_path / "d", "plant7-fan", message, capsys)
    (detector,) = run["detectors"]
    assert detector["detector"]["state"]["stateName"] == "hot"


def test_a_template_body_that_is_not_a_template_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "iot"
    folder.mkdir()
    (folder / "stack.json").write_text(json.dumps({"TemplateBody": "Resources: [unclosed"}))
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2
    assert "iot/stack.json" in err and "TemplateBody" in err, err
