"""``--parameter NAME=VALUE`` on every command that reads a CloudFormation template's IoT
Events resources, not only on ``import iotevents``: ``detectors validate``/``run``/``analyze``
and ``alarms validate``/``run`` resolve a ``Ref`` to a parameter without a ``Default`` with
the value given, and refuse a parameter the template does not declare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.cli.main import main


def _stack(input_name: str, model: str) -> str:
    """A template declaring ``Limit`` (no Default), the input *input_name* (``id``,
    ``temp``) and the resource *model* that reads it."""
    return f"""\
Parameters:
  Limit:
    Type: Number
Resources:
  In:
    Type: AWS::IoTEvents::Input
    Properties:
      InputName: {input_name}
      InputDefinition:
        Attributes: [{{JsonPath: id}}, {{JsonPath: temp}}]
{model}"""


DETECTOR_MODEL = """\
  PumpWatch:
    Type: AWS::IoTEvents::DetectorModel
    Properties:
      DetectorModelName: pumpWatch
      Key: id
      RoleArn: arn:aws:iam::123456789012:role/r
      DetectorModelDefinition:
        InitialStateName: Normal
        States:
          - StateName: Normal
            OnInput:
              TransitionEvents:
                - EventName: hot
                  Condition: !Sub "$input.PumpInput.temp > ${Limit}"
                  NextState: Hot
          - StateName: Hot
"""
ALARM_MODEL = """\
  BoilerHot:
    Type: AWS::IoTEvents::AlarmModel
    Properties:
      AlarmModelName: boilerHot
      RoleArn: arn:aws:iam::123456789012:role/r
      Key: id
      AlarmRule:
        SimpleRule:
          InputProperty: $input.BoilerInput.temp
          ComparisonOperator: GREATER
          Threshold: !Ref Limit
"""


def _command(name: str, tmp_path: Path) -> list[str]:
    """The command *name* on a template (its model and its inputs)."""
    stack = tmp_path / "stack.yaml"
    messages = tmp_path / "messages.jsonl"
    if name.startswith("detectors"):
        stack.write_text(_stack("PumpInput", DETECTOR_MODEL))
        messages.write_text(
            json.dumps({"inputName": "PumpInput", "payload": {"id": "p", "temp": 9}})
        )
    else:
        stack.write_text(_stack("BoilerInput", ALARM_MODEL))
        messages.write_text(
            json.dumps({"inputName": "BoilerInput", "payload": {"id": "b", "temp": 9}})
        )
    group, action = name.split()
    argv = [group, action, str(stack), "--input", str(stack)]
    if action == "run":
        argv += ["--messages", str(messages)]
    return argv


COMMANDS = (
    "detectors validate",
    "detectors run",
    "detectors analyze",
    "alarms validate",
    "alarms run",
)


@pytest.mark.parametrize("name", COMMANDS)
def test_a_parameter_without_default_is_given_with_the_option(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _command(name, tmp_path)
    assert main([*argv, "--parameter", "Limit=80"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", COMMANDS)
def test_without_it_the_error_names_this_commands_option(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_command(name, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "parameter 'Limit' has no Default" in err and "--parameter Limit=VALUE" in err, err
    assert "import iotevents" not in err  # this command takes the option itself


@pytest.mark.parametrize("name", COMMANDS)
def test_a_parameter_the_template_does_not_declare_is_refused(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _command(name, tmp_path)
    assert main([*argv, "--parameter", "Limit=80", "--parameter", "Limt=80"]) == 2
    err = capsys.readouterr().err
    assert "--parameter Limt=80" in err and "declares a parameter 'Limt'" in err, err
