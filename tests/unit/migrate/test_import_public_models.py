"""Detector models from public samples, restated in the shapes their authors saved them,
imported with ``plantwatch import iotevents`` and replayed with ``detectors run``:

- a pump watch after aws-samples/aws-iot-events-accelerators ("integrating machine
  learning"): ``describe-detector-model`` output with the console's extra top-level
  ``schemaVersion``, three inputs, ``timeout('...')`` with single quotes, timers that keep
  running across messages;
- a connectivity monitor after dave-malone/aws-iot-events-device-connectivity-status-demo:
  a console export with ``"detectorModelDescription": null`` and ``"durationExpression":
  null`` beside ``seconds``, SERIAL evaluation, lifecycle events as its input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.cli.main import main
from cloud.migrate.iotevents import registered

SNS = "arn:aws:sns:us-west-2:123456789012:pump-alerts"


def _event(name: str, condition: str, *actions: dict[str, Any], to: str | None = None) -> dict:
    event: dict[str, Any] = {"eventName": name, "condition": condition, "actions": list(actions)}
    if to is not None:
        event["nextState"] = to
    return event


def _set(name: str, value: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": name, "value": value}}


def _timer(name: str, seconds: int) -> dict[str, Any]:
    return {"setTimer": {"timerName": name, "seconds": seconds, "durationExpression": None}}


def _pump() -> dict[str, Any]:
    serviced = _event(
        "serviced", "$input.PumpAction.service_complete == 1", _set("minutes", "0"), to="off"
    )
    alert = {"events": [_event("tell", "true", {"sns": {"targetArn": SNS}})]}
    states = [
        {
            "stateName": "start",
            "onInput": {
                "transitionEvents": [_event("ready", "true", _set("minutes", "0"), to="off")]
            },
        },
        {
            "stateName": "off",
            "onInput": {
                "transitionEvents": [
                    _event("spin", "$input.PumpData.TT01 > 10", _timer("running", 60), to="on")
                ]
            },
        },
        {
            "stateName": "on",
            "onEnter": {
                "events": [_event("watch", "true", _timer("hot", 300), _set("watching", "1"))]
            },
            "onInput": {
                "events": [
                    _event(
                        "minute",
                        "timeout('running')",
                        _set("minutes", "$variable.minutes+1"),
                        {"resetTimer": {"timerName": "running"}},
                    ),
                    _event(
                        "cool",
                        "$input.PumpData.FT01 <= 200",
                        {"clearTimer": {"timerName": "hot"}},
                        _set("watching", "0"),
                    ),
                    _event(
                        "warm",
                        "$input.PumpData.FT01 > 200 && $variable.watching == 0",
                        {"resetTimer": {"timerName": "hot"}},
                        _set("watching", "1"),
                    ),
                ],
                "transitionEvents": [
                    _event("stop", "$input.PumpData.TT01 <= 10", to="off"),
                    _event("predicted", "$input.PumpInference.prediction == 1", to="failing"),
                    _event("overheated", "timeout('hot')", to="hot"),
                ],
            },
            "onExit": {
                "events": [_event("quiet", "true", {"clearTimer": {"timerName": "running"}})]
            },
        },
        {"stateName": "hot", "onEnter": alert, "onInput": {"transitionEvents": [serviced]}},
        {"stateName": "failing", "onEnter": alert, "onInput": {"transitionEvents": [serviced]}},
    ]
    return {
        "detectorModel": {
            "detectorModelDefinition": {"states": states, "initialStateName": "start"},
            "detectorModelConfiguration": {
                "detectorModelName": "pumpWatch",
                "detectorModelVersion": "1",
                "detectorModelArn": "arn:aws:iotevents:us-west-2:123456789012:detectorModel/pumpWatch",
                "roleArn": "arn:aws:iam::123456789012:role/PumpWatchRole",
                "creationTime": "2019-12-14T03:19:42.866Z",
                "lastUpdateTime": "2019-12-14T03:19:42.866Z",
                "status": "ACTIVE",
                "key": "motorID",
                "evaluationMethod": "BATCH",
            },
        },
        "schemaVersion": "1",
    }


def _monitor() -> dict[str, Any]:
    connected = '$input.lifecycle.eventType == "connected"'
    disconnected = '$input.lifecycle.eventType == "disconnected"'
    return {
        "detectorModelDefinition": {
            "initialStateName": "Normal",
            "states": [
                {
                    "stateName": "Normal",
                    "onEnter": {
                        "events": [
                            _event(
                                "init", "isUndefined($variable.status)", _set("status", '"unknown"')
                            )
                        ]
                    },
                    "onInput": {
                        "events": [
                            _event("up", connected, _set("status", '"connected"')),
                            _event("down", disconnected, _timer("grace", 60)),
                        ],
                        "transitionEvents": [
                            _event(
                                "gone",
                                'timeout("grace")',
                                _set("status", '"offline"'),
                                to="Offline",
                            )
                        ],
                    },
                },
                {
                    "stateName": "Offline",
                    "onEnter": {"events": [_event("wait", "true", _timer("alert", 60))]},
                    "onInput": {
                        "events": [_event("up", connected, _set("status", '"connected"'))],
                        "transitionEvents": [
                            _event(
                                "back",
                                '$variable.status == "connected"',
                                {"clearTimer": {"timerName": "alert"}},
                                to="Normal",
                            ),
                            _event("notify", 'timeout("alert")', to="Notify"),
                        ],
                    },
                },
                {
                    "stateName": "Notify",
                    "onEnter": {"events": [_event("tell", "true", {"sns": {"targetArn": SNS}})]},
                    "onInput": {
                        "events": [_event("up", connected, _set("status", '"connected"'))],
                        "transitionEvents": [
                            _event("back", '$variable.status == "connected"', to="Normal")
                        ],
                    },
                },
            ],
        },
        "detectorModelDescription": None,
        "detectorModelName": "ConnectivityMonitor",
        "evaluationMethod": "SERIAL",
        "key": "clientId",
        "roleArn": "arn:aws:iam::123456789012:role/service-role/ConnectivityMonitorRole",
    }


def _input(name: str, *paths: str) -> dict[str, Any]:
    return {"inputName": name, "inputDefinition": {"attributes": [{"jsonPath": p} for p in paths]}}


def _import_and_run(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    files: dict[str, Any],
    name: str,
    lines: list,
) -> dict[str, Any]:
    folder = tmp_path / "iot"
    folder.mkdir()
    for file, document in files.items():
        (folder / file).write_text(json.dumps(document, indent=4))
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d"), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    found = registered(tmp_path / "d" / "detectors", name)
    assert found is not None
    model, inputs, _ = found
    messages = tmp_path / "m.jsonl"
    messages.write_text("".join(json.dumps(line) + "\n" for line in lines))
    command = ["detectors", "run", str(model), "--messages", str(messages), "--json"]
    for path in inputs:
        command += ["--input", str(path)]
    code = main(command)
    run = json.loads(capsys.readouterr().out)
    assert code == 0
    return run


def test_the_pump_watch_overheats_after_five_hot_minutes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def data(tt: int, ft: int) -> dict[str, Any]:
        return {"inputName": "PumpData", "payload": {"motorID": "m1", "TT01": tt, "FT01": ft}}

    files = {
        "pumpWatch.json": _pump(),
        "PumpData.json": _input("PumpData", "motorID", "TT01", "FT01"),
        "PumpAction.json": _input("PumpAction", "motorID", "service_complete"),
        "PumpInference.json": _input("PumpInference", "motorID", "prediction"),
    }
    lines = [data(5, 100), data(20, 100), {"advance": "PT61S"}, data(20, 250), {"advance": "PT6M"}]
    run = _import_and_run(capsys, tmp_path, files, "pumpWatch", lines)
    (detector,) = run["detectors"]
    state = detector["detector"]["state"]
    assert state["stateName"] == "hot"
    assert {v["name"]: v["value"] for v in state["variables"]}["minutes"] == "6"
    sent = [e for e in run["events"] if e["type"] == "action" and e.get("action") == "sns"]
    assert len(sent) == 1


def test_the_connectivity_monitor_notifies_two_minutes_after_a_disconnect(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def event(kind: str) -> dict[str, Any]:
        return {"inputName": "lifecycle", "payload": {"clientId": "thing-1", "eventType": kind}}

    files = {
        "monitor.json": _monitor(),
        "lifecycle.json": _input("lifecycle", "clientId", "eventType"),
    }
    lines = [event("connected"), event("disconnected"), {"advance": "PT61S"}, {"advance": "PT61S"}]
    run = _import_and_run(capsys, tmp_path, files, "ConnectivityMonitor", lines)
    (detector,) = run["detectors"]
    assert detector["detector"]["state"]["stateName"] == "Notify"
    sent = [e for e in run["events"] if e["type"] == "action" and e.get("action") == "sns"]
    assert [e["t"] for e in sent] == [120.0]
