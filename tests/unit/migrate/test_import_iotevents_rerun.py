"""``plantwatch import iotevents`` run twice, or failing half way, and names that differ
only by case."""

from __future__ import annotations

import json
import shutil
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
    changed = tmp_path / "changed"
    shutil.copytree(DATA, changed)
    for path in changed.glob("describe-detector-model-*.json"):
        doc = json.loads(path.read_text())
        doc["detectorModel"]["detectorModelConfiguration"]["detectorModelDescription"] = "v2"
        path.write_text(json.dumps(doc))
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
