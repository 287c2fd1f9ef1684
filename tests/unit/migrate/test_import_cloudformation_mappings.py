"""``Fn::FindInMap`` (on the template's ``Mappings``), ``Fn::Select`` and ``Fn::Split`` in an
IoT Events template are evaluated as CloudFormation evaluates them, with the parameter
values of the import (a threshold per environment, a topic picked from a list)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.cli.main import main
from cloud.migrate.iotevents import read_registry
from tests.detector_models import PUMP_INPUT_YAML

STACK = (
    """\
Parameters:
  Env:
    Type: String
    Default: dev
  Topics:
    Type: CommaDelimitedList
    Default: alarms/a,alarms/b
Mappings:
  Limits:
    dev:
      Rpm: 5000
    prod:
      Rpm: "3000"
Resources:
"""
    + PUMP_INPUT_YAML
    + """\
  RpmHigh:
    Type: AWS::IoTEvents::AlarmModel
    Properties:
      AlarmModelName: !Join ["-", [rpmHigh, !Select [1, !Split ["/", "plant/line7/cell2"]]]]
      AlarmModelDescription: !Join [" and ", !Ref Topics]
      RoleArn: arn:aws:iam::123456789012:role/events
      Key: pumpId
      AlarmRule:
        SimpleRule:
          InputProperty: $input.PumpInput.rpm
          ComparisonOperator: GREATER
          Threshold: !FindInMap [Limits, !Ref Env, Rpm]
      AlarmEventActions:
        AlarmActions:
          - IotTopicPublish:
              MqttTopic: !Select [1, !Ref Topics]
"""
)


def _import(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, *extra: str) -> Any:
    folder = tmp_path / "iot"
    folder.mkdir()
    (folder / "pumps.yaml").write_text(text)
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d"), *extra])
    return code, capsys.readouterr()


def _alarm(tmp_path: Path, name: str) -> dict[str, Any]:
    detectors = tmp_path / "d" / "detectors"
    entry = read_registry(detectors)["alarm_models"][name]
    return json.loads((detectors / entry["file"]).read_text())


@pytest.mark.parametrize(("env", "threshold"), [("dev", "5000"), ("prod", "3000")])
def test_mappings_select_and_split_are_evaluated(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, env: str, threshold: str
) -> None:
    code, out = _import(capsys, tmp_path, STACK, "--parameter", f"Env={env}")
    assert code == 0, out
    body = _alarm(tmp_path, "rpmHigh-line7")
    assert body["alarmRule"]["simpleRule"]["threshold"] == threshold
    assert body["alarmModelDescription"] == "alarms/a and alarms/b"  # Join of a list Ref
    (action,) = body["alarmEventActions"]["alarmActions"]
    assert action == {"iotTopicPublish": {"mqttTopic": "alarms/b"}}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("[Limits, !Ref Env, Rpm]", "[Limits, qa, Rpm]", "Fn::FindInMap: 'qa' is not a key"),
        ("[Limits, !Ref Env, Rpm]", "[Sizes, dev, Rpm]", "Fn::FindInMap: 'Sizes' is not"),
        ("!Select [1, !Ref Topics]", "!Select [2, !Ref Topics]", "Fn::Select: index 2 is"),
    ],
)
def test_what_does_not_evaluate_is_named_where_it_is(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in STACK
    code, out = _import(capsys, tmp_path, STACK.replace(old, new))
    assert code == 2
    assert "$.Resources.RpmHigh.Properties." in out.err and expected in out.err, out.err
