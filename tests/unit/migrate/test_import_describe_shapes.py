"""describe-* output as users save it besides ``> file.json``: narrowed to the object with
``--query detectorModel`` / ``--query input`` (or ``jq .detectorModel``), which drops the
outer key, and boto3 responses dumped whole, ``ResponseMetadata`` included. Both are the
same definitions; ``import iotevents`` and ``validate`` take them, and a problem is named
by the path in the file as saved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.cli.main import main
from cloud.migrate.iotevents import registered

DATA = Path(__file__).with_name("data") / "iotevents"
METADATA = {
    "RequestId": "0f8c6a52-1d5e-4c1b-9a57-2f6f0e0f4b11",
    "HTTPStatusCode": 200,
    "HTTPHeaders": {"content-type": "application/json"},
    "RetryAttempts": 0,
}


def _described(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def _queried(tmp_path: Path) -> Path:
    """``--query detectorModel`` and ``--query input`` output of the motorHeartbeat files."""
    folder = tmp_path / "iot"
    folder.mkdir()
    model = _described("describe-detector-model-motorHeartbeat.json")["detectorModel"]
    (folder / "motorHeartbeat.json").write_text(json.dumps(model, indent=4))
    pressure = _described("describe-input-PressureInput.json")["input"]
    (folder / "PressureInput.json").write_text(json.dumps(pressure, indent=4))
    return folder


def test_describe_output_narrowed_by_query_is_imported_and_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = _queried(tmp_path)
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d"), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    (model,) = json.loads(out)["models"]
    assert (model["name"], model["key"], model["inputs"]) == (
        "motorHeartbeat",
        "motorid",
        ["PressureInput"],
    )
    found = registered(tmp_path / "d" / "detectors", "motorHeartbeat")
    assert found is not None
    path, inputs, _ = found
    stored = json.loads(path.read_text())
    assert "detectorModelConfiguration" not in stored and stored["key"] == "motorid"
    messages = tmp_path / "m.jsonl"
    messages.write_text(
        json.dumps(
            {
                "inputName": "PressureInput",
                "payload": {"motorid": "m1", "sensorData": {"pressure": 20}},
            }
        )
        + "\n"
    )
    code = main(
        [
            "detectors",
            "run",
            str(path),
            "--input",
            str(inputs[0]),
            "--messages",
            str(messages),
            "--json",
        ]
    )
    run = json.loads(capsys.readouterr().out)
    assert code == 0
    (detector,) = run["detectors"]
    assert detector["detector"]["state"]["stateName"] == "Online"


def test_validate_takes_describe_output_narrowed_by_query(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = _queried(tmp_path)
    code = main(
        [
            "detectors",
            "validate",
            str(folder / "motorHeartbeat.json"),
            "--input",
            str(folder / "PressureInput.json"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err


def test_a_problem_in_narrowed_output_is_named_where_it_is_in_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = _queried(tmp_path)
    model = json.loads((folder / "motorHeartbeat.json").read_text())
    model["detectorModelConfiguration"]["key"] = "motor id!"
    (folder / "motorHeartbeat.json").write_text(json.dumps(model))
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2
    assert "$.detectorModelConfiguration.key" in err, err


def test_boto3_responses_dumped_whole_are_imported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "iot"
    folder.mkdir()
    for name in (
        "describe-detector-model-motorHeartbeat.json",
        "describe-input-PressureInput.json",
    ):
        (folder / name).write_text(json.dumps({**_described(name), "ResponseMetadata": METADATA}))
    alarm = {
        "alarmModelArn": "arn:aws:iotevents:us-east-1:123456789012:alarmModel/pressureHigh",
        "alarmModelVersion": "2",
        "creationTime": "2024-03-08 11:40:02.118000+00:00",
        "lastUpdateTime": "2024-03-09 08:01:55.004000+00:00",
        "status": "ACTIVE",
        "alarmModelName": "pressureHigh",
        "roleArn": "arn:aws:iam::123456789012:role/IoTEventsRole",
        "key": "motorid",
        "severity": 2,
        "alarmRule": {
            "simpleRule": {
                "inputProperty": "$input.PressureInput.sensorData.pressure",
                "comparisonOperator": "GREATER",
                "threshold": "70",
            }
        },
        "ResponseMetadata": METADATA,
    }
    (folder / "pressureHigh.json").write_text(json.dumps(alarm))
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d"), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)
    assert [m["name"] for m in report["models"]] == ["motorHeartbeat"]
    assert [a["name"] for a in report["alarm_models"]] == ["pressureHigh"]
    pressure = folder / "describe-input-PressureInput.json"
    code = main(["alarms", "validate", str(folder / "pressureHigh.json"), "--input", str(pressure)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
