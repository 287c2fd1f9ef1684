"""``plantwatch import iotevents`` on detector models saved from the IoT Events console's
templates ("Device heartbeat", "Simple alarm"): such a file has no ``roleArn`` and, for some
templates, no ``detectorModelName`` either, since the console asks for both when it creates
the model. The import names the model after its file, says so, and the model runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cloud.cli.main import main
from cloud.migrate.iotevents import registered

DATA = Path(__file__).with_name("data") / "console"


def _import(capsys: pytest.CaptureFixture[str], folder: Path, data: Path) -> dict[str, Any]:
    code = main(["import", "iotevents", str(folder), "--data", str(data), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def _replay(
    capsys: pytest.CaptureFixture[str], detectors: Path, name: str, tmp_path: Path, lines: list
) -> dict[str, Any]:
    found = registered(detectors, name)
    assert found is not None, name
    model, inputs, _ = found
    messages = tmp_path / f"{name}.jsonl"
    messages.write_text("".join(json.dumps(line) + "\n" for line in lines))
    command = ["detectors", "run", str(model), "--messages", str(messages), "--json"]
    for path in inputs:
        command += ["--input", str(path)]
    code = main(command)
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_a_console_template_without_a_name_is_named_after_its_file_and_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = _import(capsys, DATA, tmp_path / "d")
    models = {m["name"]: m for m in report["models"]}
    assert set(models) == {"heartbeat", "simple_alarm"}
    assert any(
        "no detectorModelName" in w and "'heartbeat'" in w for w in models["heartbeat"]["warnings"]
    ), models["heartbeat"]["warnings"]
    detectors = tmp_path / "d" / "detectors"

    beat = {"inputName": "HeartbeatInput", "payload": {"value": 1}}
    run = _replay(
        capsys,
        detectors,
        "heartbeat",
        tmp_path,
        [beat, {"advance": "PT4M"}, beat, {"advance": "PT6M"}],
    )
    (detector,) = run["detectors"]
    assert detector["detector"]["state"]["stateName"] == "Offline"
    sent = [e for e in run["events"] if e["type"] == "action"]
    assert [e["t"] for e in sent] == [540.0]  # five minutes after the last beat

    def say(**payload: Any) -> dict[str, Any]:
        return {"inputName": "SimpleAlarmInput", "payload": {"alarmId": "a1", **payload}}

    run = _replay(
        capsys,
        detectors,
        "simple_alarm",
        tmp_path,
        [
            say(value=5, threshold=10),
            say(value=15),
            say(command="acknowledge"),
            {"advance": "PT2M"},
        ],
    )
    (detector,) = run["detectors"]
    assert detector["detector"]["state"]["stateName"] == "Alarming"  # the snooze ran out


def test_a_file_name_that_cannot_name_the_model_says_to_add_a_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "iot"
    folder.mkdir()
    shutil.copy(DATA / "heartbeat.json", folder / "device heartbeat.json")
    shutil.copy(DATA / "heartbeat-input.json", folder)
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2
    assert "iot/device heartbeat.json" in err and "detectorModelName" in err, err
    assert not (tmp_path / "d" / "detectors" / "registry.json").exists()
