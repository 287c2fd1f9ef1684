"""``plantwatch import iotevents`` run twice, or failing half way, and names that differ
only by case."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud.cli.main import main
from cloud.migrate import iotevents

DATA = Path(__file__).with_name("data") / "iotevents"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_running_the_import_twice_registers_each_model_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["import", "iotevents", str(DATA), "--data", str(tmp_path / "d"), "--json"]
    assert main(argv) == 0
    once = _files(tmp_path / "d" / "detectors")
    assert main(argv) == 0
    assert _files(tmp_path / "d" / "detectors") == once
    registry = json.loads((tmp_path / "d" / "detectors" / "registry.json").read_text())
    assert sorted(registry["models"]) == ["motorHeartbeat", "valveWatch"]
    capsys.readouterr()


def test_a_failure_while_registering_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second import changes both models; the analysis of the second one fails: the
    first model's file must not be left changed beside a registry that still describes
    the earlier import."""
    argv = ["import", "iotevents", str(DATA), "--data", str(tmp_path / "d")]
    assert main(argv) == 0
    before = _files(tmp_path / "d" / "detectors")
    changed = _changed(tmp_path)
    real = iotevents.analyze
    calls = []

    def fails_second(model: object, inputs: object) -> list:
        calls.append(model)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(model, inputs)

    monkeypatch.setattr(iotevents, "analyze", fails_second)
    assert main(["import", "iotevents", str(changed), "--data", str(tmp_path / "d")]) == 2
    assert "No space left" in capsys.readouterr().err
    assert _files(tmp_path / "d" / "detectors") == before


def test_models_differing_only_by_case_are_two_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """IoT Events names are case-sensitive; so are the registry and its files."""
    folder = tmp_path / "iot"
    shutil.copytree(DATA, folder)
    doc = json.loads((folder / "describe-detector-model-valveWatch.json").read_text())
    doc["detectorModel"]["detectorModelConfiguration"]["detectorModelName"] = "valvewatch"
    (folder / "lower.json").write_text(json.dumps(doc))
    assert main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    for name in ("valveWatch", "valvewatch"):
        found = iotevents.registered(tmp_path / "d" / "detectors", name)
        assert found is not None and found[0].name == f"{name}.json"


def _changed(tmp_path: Path) -> Path:
    """DATA with every model's description changed (a second import that differs)."""
    changed = tmp_path / "changed"
    shutil.copytree(DATA, changed)
    for path in changed.glob("describe-detector-model-*.json"):
        doc = json.loads(path.read_text())
        doc["detectorModel"]["detectorModelConfiguration"]["detectorModelDescription"] = "v2"
        path.write_text(json.dumps(doc))
    return changed


def _writes_of_one_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    real = iotevents.write_private
    calls: list[Path] = []

    def spy(path: Path, body: bytes, **kw: object) -> None:
        calls.append(path)
        real(path, body, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(iotevents, "write_private", spy)
        iotevents.import_folder(DATA, tmp_path / "count" / "detectors")
    return len(calls)


def _failing_at(n: int, calls: list[Path]) -> Callable[..., None]:
    """``write_private`` with a full disk at its *n*-th call; *calls* gets every path."""
    real = iotevents.write_private

    def flaky(path: Path, body: bytes, **kw: object) -> None:
        calls.append(path)
        if len(calls) == n:
            raise OSError(28, "No space left on device")
        real(path, body, **kw)

    return flaky


@pytest.mark.parametrize("first", [False, True], ids=["onto-nothing", "onto-an-import"])
def test_a_write_failing_at_any_point_leaves_no_part_of_the_new_set(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    first: bool,
) -> None:
    """Disk full at the first, second ... last write of an import (the model and input
    files, then the registry): what `up` reads is exactly what it was, no file of the new
    set is left behind, and the error names the file that failed."""
    total = _writes_of_one_import(tmp_path, monkeypatch)
    assert total >= 3
    changed = _changed(tmp_path)
    for failing in range(1, total + 1):
        data = tmp_path / f"d{failing}"
        if first:
            assert main(["import", "iotevents", str(DATA), "--data", str(data)]) == 0
        before = _files(data / "detectors") if (data / "detectors").exists() else {}
        capsys.readouterr()
        calls: list[Path] = []
        flaky = _failing_at(failing, calls)
        with monkeypatch.context() as patch:
            patch.setattr(iotevents, "write_private", flaky)
            code = main(["import", "iotevents", str(changed), "--data", str(data)])
        assert code == 2, failing
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "No space left" in err and "nothing of this import was registered" in err
        assert calls[-1].name in err
        after = _files(data / "detectors") if (data / "detectors").exists() else {}
        assert after == before, failing
        # and the same import, once the disk has room, goes through whole
        assert main(["import", "iotevents", str(changed), "--data", str(data)]) == 0
        for name in ("valveWatch", "motorHeartbeat"):
            found = iotevents.registered(data / "detectors", name)
            assert found is not None
            body = json.loads(found[0].read_text())
            assert body["detectorModelDescription"] == "v2"
    capsys.readouterr()


def test_a_failing_rename_of_the_set_registers_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "d"
    assert main(["import", "iotevents", str(DATA), "--data", str(data)]) == 0
    before = _files(data / "detectors")

    def refuse(src: object, dst: object) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(iotevents.os, "rename", refuse)
    assert main(["import", "iotevents", str(_changed(tmp_path)), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "Permission denied" in err and "sets" in err
    assert _files(data / "detectors") == before


def test_an_import_replaced_by_another_leaves_no_stale_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d"
    assert main(["import", "iotevents", str(DATA), "--data", str(data)]) == 0
    assert main(["import", "iotevents", str(_changed(tmp_path)), "--data", str(data)]) == 0
    capsys.readouterr()
    registry = json.loads((data / "detectors" / "registry.json").read_text())
    named = {e["file"] for kind in ("models", "inputs") for e in registry[kind].values()}
    on_disk = set(_files(data / "detectors")) - {"registry.json"}
    assert on_disk == named


def test_a_set_left_half_removed_is_written_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A set of the same name that lost a file (a clean-up killed part way) is not taken
    for the import's set: it is written whole again."""
    data = tmp_path / "d"
    assert main(["import", "iotevents", str(DATA), "--data", str(data)]) == 0
    (model_file, _inputs, _lambdas) = iotevents.registered(data / "detectors", "valveWatch")
    body = model_file.read_bytes()
    model_file.unlink()
    assert main(["import", "iotevents", str(DATA), "--data", str(data)]) == 0
    capsys.readouterr()
    assert model_file.read_bytes() == body


def _alarm(folder: Path, threshold: str) -> Path:
    """*folder* with DATA's files and an alarm model on its PressureInput."""
    if not folder.exists():
        shutil.copytree(DATA, folder)
    (folder / "alarm.json").write_text(
        json.dumps(
            {
                "alarmModelName": "pressureHigh",
                "roleArn": "arn:aws:iam::1:role/r",
                "key": "motorid",
                "alarmRule": {
                    "simpleRule": {
                        "inputProperty": "$input.PressureInput.sensorData.pressure",
                        "comparisonOperator": "GREATER",
                        "threshold": threshold,
                    }
                },
            }
        )
    )
    return folder


def test_a_reimported_alarm_model_replaces_its_file_and_the_printed_path_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud.detectors.alarms import load_alarm_model

    data = tmp_path / "d"
    folder = _alarm(tmp_path / "iot", "70")
    assert main(["import", "iotevents", str(folder), "--data", str(data)]) == 0
    first = capsys.readouterr().out
    _alarm(folder, "90")
    assert main(["import", "iotevents", str(folder), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert out != first
    # the printed next step's --alarm-model file is the new one, and up's loader takes it
    (next_step,) = [line for line in out.splitlines() if line.startswith("next:")]
    printed = next_step.split("--alarm-model ")[1]
    assert printed not in first  # the set's name covers the alarm file: a new set
    model = load_alarm_model(Path(printed))
    assert model.rule.threshold_text == "90"
    registry = json.loads((data / "detectors" / "registry.json").read_text())
    assert data / "detectors" / registry["alarm_models"]["pressureHigh"]["file"] == Path(printed)
    # the superseded alarm file went with its set; nothing on disk is unnamed
    named = {
        e["file"] for kind in ("models", "inputs", "alarm_models") for e in registry[kind].values()
    }
    assert set(_files(data / "detectors")) - {"registry.json"} == named
    assert len(list((data / "detectors").rglob("pressureHigh.json"))) == 1


def test_an_alarm_only_import_keeps_the_detector_models_registered_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d"
    assert main(["import", "iotevents", str(DATA), "--data", str(data)]) == 0
    alone = tmp_path / "alarm"
    alone.mkdir()
    _alarm(tmp_path / "full", "70")
    shutil.copy(tmp_path / "full" / "alarm.json", alone / "alarm.json")
    pressure = next(p for p in DATA.rglob("*.json") if "PressureInput" in p.name)
    shutil.copy(pressure, alone / pressure.name)
    assert main(["import", "iotevents", str(alone), "--data", str(data)]) == 0
    capsys.readouterr()
    for name in ("motorHeartbeat", "valveWatch"):
        model, inputs, _lambdas = iotevents.registered(data / "detectors", name)
        assert model.is_file() and all(path.is_file() for path in inputs)
    registry = json.loads((data / "detectors" / "registry.json").read_text())
    assert (data / "detectors" / registry["alarm_models"]["pressureHigh"]["file"]).is_file()
    # a later import re-registers the alarm's input elsewhere: the alarm's set is now named
    # by the alarm model alone, and is kept for it
    assert main(["import", "iotevents", str(DATA), "--data", str(data)]) == 0
    capsys.readouterr()
    registry = json.loads((data / "detectors" / "registry.json").read_text())
    alarm_file = registry["alarm_models"]["pressureHigh"]["file"]
    assert alarm_file.split("/")[1] != registry["inputs"]["PressureInput"]["file"].split("/")[1]
    assert (data / "detectors" / alarm_file).is_file()


@pytest.mark.parametrize("where", ["staging", "sets"])
def test_no_room_for_the_staging_folder_names_the_folder_and_registers_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    import errno

    data = tmp_path / "d"
    assert main(["import", "iotevents", str(DATA), "--data", str(data)]) == 0
    before = _files(data / "detectors")
    capsys.readouterr()

    def full(*_args: object, **_kwargs: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        if where == "staging":
            patch.setattr(iotevents.tempfile, "mkdtemp", full)
        else:
            patch.setattr(iotevents, "private_dir", full)
        code = main(["import", "iotevents", str(_changed(tmp_path)), "--data", str(data)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert str(data / "detectors") in err and "No space left" in err
    assert "nothing of this import was registered" in err
    assert _files(data / "detectors") == before


@pytest.mark.parametrize("kind", ["dangling", "loop", "fifo"])
def test_a_json_entry_that_is_not_a_file_is_named_not_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A broken link (or a pipe) among the describe files used to be left out silently,
    and the rest imported as if it were the whole setup."""
    import os

    folder = tmp_path / "iot"
    shutil.copytree(DATA, folder)
    odd = folder / "describe-detector-model-pumpWatch.json"
    if kind == "dangling":
        odd.symlink_to(tmp_path / "gone.json")
    elif kind == "loop":
        odd.symlink_to(odd)
    else:
        os.mkfifo(odd)
    assert main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(odd) in err and "not a regular file" in err, err
    assert not (tmp_path / "d" / "detectors" / "registry.json").exists()
