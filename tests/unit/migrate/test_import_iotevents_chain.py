"""``plantwatch import iotevents`` on models that feed each other with ``iotEvents``
actions: what the report calls run, recorded or fed by nothing is what ``plantwatch up``
does when it runs the import's models together, as its printed next step does."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from detector_models import (
    RELAY_INPUT,
    boiler_alarm_files,
    relay_chain_files,
)

from cloud.cli.main import main


def _import(capsys: pytest.CaptureFixture[str], folder: Path, data: Path) -> dict:
    code = main(["import", "iotevents", str(folder), "--data", str(data), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def _strict(capsys: pytest.CaptureFixture[str], folder: Path, data: Path) -> tuple[int, str]:
    code = main(["import", "iotevents", str(folder), "--data", str(data), "--strict"])
    return code, capsys.readouterr().out


def test_an_action_to_an_input_another_detector_model_reads_is_run_not_recorded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = relay_chain_files(tmp_path / "iot")
    report = _import(capsys, folder, tmp_path / "data")
    assert report["cannot_run_locally"] == []
    assert report["inputs_not_fed_locally"] == []
    assert {m["name"]: m["runs_locally"] for m in report["models"]} == {
        "relayed": True,
        "spotter": True,
    }
    code, out = _strict(capsys, folder, tmp_path / "data")
    assert code == 0, out


def test_the_next_step_runs_every_detector_model_of_the_import(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = relay_chain_files(tmp_path / "iot")
    assert main(["import", "iotevents", str(folder), "--data", str(tmp_path / "data")]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("next: ")]
    argv = shlex.split(line.removeprefix("next: "))
    given = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--detector-model"]
    assert sorted(given) == ["relayed", "spotter"]


def test_an_action_to_an_input_only_an_alarm_model_reads_is_run_with_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = relay_chain_files(tmp_path / "iot")
    (folder / "relayed.json").unlink()
    (folder / "relay_input.json").unlink()
    boiler_alarm_files(folder, RELAY_INPUT)  # boilerHot reads Relay
    report = _import(capsys, folder, tmp_path / "data")
    assert report["cannot_run_locally"] == []
    assert report["inputs_not_fed_locally"] == []
    code, out = _strict(capsys, folder, tmp_path / "data")
    assert code == 0, out


def test_an_input_fed_only_by_a_model_nothing_feeds_is_still_fed_by_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``spotter`` reads ``Valve``, which nothing sends under ``plantwatch up``: it never
    evaluates there, so its action never feeds ``Relay`` either."""
    folder = relay_chain_files(tmp_path / "iot", source="Valve")
    report = _import(capsys, folder, tmp_path / "data")
    unfed = {(u["model"], u["input"]): u["reason"] for u in report["inputs_not_fed_locally"]}
    assert set(unfed) == {("spotter", "Valve"), ("relayed", RELAY_INPUT)}
    assert "spotter" in unfed[("relayed", RELAY_INPUT)]  # who would feed it, and why not
    assert report["cannot_run_locally"] == []  # the action itself is routed when it fires
    code, _out = _strict(capsys, folder, tmp_path / "data")
    assert code == 1


def test_an_action_to_an_input_no_model_of_the_import_reads_is_recorded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = relay_chain_files(tmp_path / "iot")
    (folder / "relayed.json").unlink()
    report = _import(capsys, folder, tmp_path / "data")
    (problem,) = report["cannot_run_locally"]
    assert (problem["model"], problem["action"]) == ("spotter", "iotEvents")
    assert "recorded" in problem["reason"] and RELAY_INPUT in problem["reason"]
