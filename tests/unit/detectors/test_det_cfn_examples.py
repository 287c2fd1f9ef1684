"""The CloudFormation User Guide's AWS::IoTEvents::DetectorModel examples, run as templates.

Source: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iotevents-detectormodel.html
("Simple Detector Model" in YAML, "Full Detector Model" in JSON), written out in
``data/aws_examples`` (see its README): the templates ``Ref`` an input ``myInput`` and, in
the simple one, ``!GetAtt myRole.Arn``, which the guide's snippets leave out, so both are
declared there. The conditions are built with ``Fn::Join``: ``$input.myInput.foo > 1``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.cli.main import main

EXAMPLES = Path(__file__).with_name("data") / "aws_examples"
FULL = EXAMPLES / "cfn_full_detector_model.json"
SIMPLE = EXAMPLES / "cfn_simple_detector_model.yaml"


def run(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    template: Path,
    lines: list[dict[str, Any]],
    advance: str = "0s",
) -> list[dict[str, Any]]:
    """``detectors run`` on the template, its inputs read from the template itself."""
    messages = tmp_path / "messages.jsonl"
    messages.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ["detectors", "run", str(template), "--input", str(template)]
    args += ["--messages", str(messages), "--advance", advance, "--jsonl"]
    assert main(args) == 0, capsys.readouterr().err
    return [json.loads(x) for x in capsys.readouterr().out.splitlines()]


def foo(key: str, value: int) -> dict[str, Any]:
    return {"inputName": "myInput", "payload": {"myKey": key, "foo": value}}


def steps(events: list[dict[str, Any]], key: str) -> list[tuple[str, ...]]:
    """What one detector did: actions by kind and event, timer operations, transitions."""
    out: list[tuple[str, ...]] = []
    for e in events:
        if e.get("key") != key:
            continue
        if e["type"] == "action":
            out.append((e["action"], e["event"]))
        elif e["type"] == "timer":
            out.append((e["op"], e["name"]))
        elif e["type"] == "transition":
            out.append((e["from"], e["to"]))
    return out


@pytest.mark.parametrize("template", [FULL, SIMPLE])
def test_the_templates_validate_strictly(
    capsys: pytest.CaptureFixture[str], template: Path
) -> None:
    code = main(["detectors", "validate", str(template), "--input", str(template)])
    assert code == 0, capsys.readouterr().err
    assert "valid detector model 'myDetectorModel'" in capsys.readouterr().out


def test_full_model_runs_every_action_of_its_transition_in_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The first message creates the detector in myInitialState (onEnter: Variable = 0, and
    myTimer for 60 s). foo = 2 > 1 publishes to myMqttTopic and resets myTimer; the
    transition ("true") sends sns, lambda, firehose, sqs and iotEvents in list order; onExit
    clears myTimer and myOtherState's onEnter sets it again. foo = 0 skips the publish only."""
    events = run(capsys, tmp_path, FULL, [foo("k1", 2), foo("k2", 0)], advance="PT2M")
    transit = [(kind, "Transit to other state") for kind in ("sns", "lambda", "firehose")]
    transit += [("sqs", "Transit to other state"), ("iotEvents", "Transit to other state")]
    after = [
        ("cleared", "myTimer"),
        ("myInitialState", "myOtherState"),
        ("setVariable", "onEnterEvent"),
        ("set", "myTimer"),
        ("fired", "myTimer"),  # myOtherState has no onInput: nothing runs
    ]
    enter = [("setVariable", "onEnterEvent"), ("set", "myTimer")]
    publish = [("iotTopicPublish", "onInputEvent"), ("reset", "myTimer")]
    assert steps(events, "k1") == enter + publish + transit + after
    assert steps(events, "k2") == enter + transit + after
    targets = {e["action"]: e["target"] for e in events if e.get("key") == "k1" and "target" in e}
    assert targets["iotTopicPublish"] == {"mqttTopic": "myMqttTopic"}
    assert targets["firehose"] == {"deliveryStreamName": "myStreamName", "separator": ","}
    assert targets["sqs"] == {"queueUrl": "myQueueUrl", "useBase64": True}
    assert targets["iotEvents"] == {"inputName": "myInputName"}
    sns = next(e for e in events if e.get("action") == "sns" and e["key"] == "k1")
    assert sns["payload"]["payload"]["state"] == {
        "stateName": "myInitialState",
        "variables": {"Variable": 0},
        "timers": {"myTimer": 1_767_225_660_000},  # reset at 00:00:00 for 60 s
    }
    [detectors] = [e["detectors"] for e in events if e["type"] == "detectors"]
    assert [d["detector"]["state"] for d in detectors] == [
        {
            "stateName": "myOtherState",
            "variables": [{"name": "Variable", "value": "0"}],
            "timers": [],
        }
    ] * 2


def test_simple_model_publishes_only_while_foo_is_above_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    events = run(capsys, tmp_path, SIMPLE, [foo("a", 2), foo("a", 1), foo("b", 1), foo("a", 7)])
    published = [
        (e["key"], e["payload"]["payload"]["eventTriggerDetails"]["messageId"])
        for e in events
        if e["type"] == "action"
    ]
    assert published == [("a", "line-1"), ("a", "line-4")]
    assert {e["target"]["mqttTopic"] for e in events if e["type"] == "action"} == {"myMqttTopic"}
