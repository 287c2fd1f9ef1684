"""A template parameter of an SSM type (``AWS::SSM::Parameter::Value<String>``) has the
*name* of a Systems Manager parameter as its ``Default``; CloudFormation deploys the value
stored under that name, which the import cannot read. Nor can it resolve a dynamic
reference (``{{resolve:ssm:/plant/role}}``). Either one is named in the report, so a name
taken for a value is not imported silently, and ``--parameter`` gives the value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.cli.main import main
from cloud.migrate.iotevents import registered
from tests.detector_models import PUMP_INPUT_YAML

STACK = (
    """\
Parameters:
  AlarmTopic:
    Type: AWS::SSM::Parameter::Value<String>
    Default: /plant/alarm-topic-arn
Resources:
"""
    + PUMP_INPUT_YAML
    + """\
  PumpWatch:
    Type: AWS::IoTEvents::DetectorModel
    Properties:
      DetectorModelName: pumpWatch
      RoleArn: "{{resolve:ssm:/plant/events-role-arn}}"
      Key: pumpId
      DetectorModelDefinition:
        InitialStateName: Idle
        States:
          - StateName: Idle
            OnInput:
              Events:
                - EventName: fast
                  Condition: $input.PumpInput.rpm > 100
                  Actions:
                    - Sns:
                        TargetArn: !Ref AlarmTopic
"""
)
TOPIC = "arn:aws:sns:eu-west-1:210987654321:pump-alarms"


def _import(capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str) -> dict[str, Any]:
    folder = tmp_path / "iot"
    folder.mkdir()
    (folder / "pumps.yaml").write_text(STACK)
    code = main(
        ["import", "iotevents", str(folder), "--data", str(tmp_path / "d"), "--json", *extra]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    (model,) = json.loads(out)["models"]
    return model


def _target(tmp_path: Path) -> Any:
    found = registered(tmp_path / "d" / "detectors", "pumpWatch")
    assert found is not None
    body = json.loads(found[0].read_text())
    (state,) = body["detectorModelDefinition"]["states"]
    return state["onInput"]["events"][0]["actions"][0]["sns"]["targetArn"]


def test_an_ssm_parameter_and_a_dynamic_reference_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = _import(capsys, tmp_path)
    notes = "\n".join(model["warnings"])
    assert "AlarmTopic" in notes and "--parameter AlarmTopic=" in notes, notes
    assert "/plant/alarm-topic-arn" in notes, notes
    assert "{{resolve:ssm:/plant/events-role-arn}}" in notes, notes
    assert "Properties.RoleArn" in notes, notes


def test_the_value_given_for_an_ssm_parameter_is_taken(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = _import(capsys, tmp_path, "--parameter", f"AlarmTopic={TOPIC}")
    assert not any("AlarmTopic" in w for w in model["warnings"]), model["warnings"]
    assert _target(tmp_path) == TOPIC
