"""describe-* output with a field DescribeDetectorModel or DescribeInput does not print is
refused by ``import iotevents`` and ``detectors validate``, naming the field's path in the
file and the defined name it most likely misspells; the read-only fields AWS prints
(``detectorModelArn``, ``creationTime``, ``status``, ...) are still taken and dropped.

The import keeps only the Create fields of ``detectorModelConfiguration`` and
``inputConfiguration``; a misspelt one (``evaluationMethd: SERIAL``) must not be dropped
with them, leaving a model that runs BATCH as if nothing had been written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.cli.main import main
from cloud.migrate.iotevents import load_any, registered
from edge.errors import UserError

DATA = Path(__file__).with_name("data") / "iotevents"
MODEL = "describe-detector-model-motorHeartbeat.json"
INPUT = "describe-input-PressureInput.json"
CONFIGURATION = (
    "detectorModelName",
    "detectorModelDescription",
    "detectorModelVersion",
    "detectorModelArn",
    "roleArn",
    "key",
    "evaluationMethod",
    "creationTime",
    "lastUpdateTime",
    "status",
)
"""DetectorModelConfiguration's members (API reference)."""


def folder_with(root: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A folder holding the motorHeartbeat model and its input, *name* changed by *edit*."""
    folder = root / "iot"
    folder.mkdir()
    for file in (MODEL, INPUT):
        shutil.copy(DATA / file, folder / file)
    document = json.loads((folder / name).read_text())
    edit(document)
    (folder / name).write_text(json.dumps(document, indent=2))
    return folder


def put(keys: tuple[str, ...], name: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        target = document
        for key in keys:
            target = target[key]
        target[name] = "SERIAL"

    return edit


@pytest.mark.parametrize(
    ("file", "where", "typo", "meant"),
    [
        (
            MODEL,
            ("detectorModel", "detectorModelConfiguration"),
            "evaluationMethd",
            "evaluationMethod",
        ),
        (MODEL, ("detectorModel",), "detectorModelDefinitio", "detectorModelDefinition"),
        (INPUT, ("input", "inputConfiguration"), "inputDescripton", "inputDescription"),
        (INPUT, ("input",), "inputDefinitions", "inputDefinition"),
    ],
)
def test_import_refuses_a_misspelt_field_naming_its_path_and_the_field_meant(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    file: str,
    where: tuple[str, ...],
    typo: str,
    meant: str,
) -> None:
    folder = folder_with(tmp_path, file, put(where, typo))
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "data")])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"iot/{file}" in err[0], err
    assert f"$.{'.'.join(where)}.{typo}" in err[0], err
    assert f"did you mean '{meant}'" in err[0], err
    assert not (tmp_path / "data" / "detectors").exists()


def test_validate_refuses_it_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    where = ("detectorModel", "detectorModelConfiguration")
    folder = folder_with(tmp_path, MODEL, put(where, "evaluationMethd"))
    code = main(["detectors", "validate", str(folder / MODEL), "--input", str(folder / INPUT)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "$.detectorModel.detectorModelConfiguration.evaluationMethd" in err, err
    assert "did you mean 'evaluationMethod'" in err, err


@settings(max_examples=40, deadline=None)
@given(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,24}", fullmatch=True).filter(
        lambda n: n not in CONFIGURATION
    )
)
def test_any_field_the_configuration_does_not_define_is_refused(name: str) -> None:
    with tempfile.TemporaryDirectory() as root:
        folder = folder_with(
            Path(root), MODEL, put(("detectorModel", "detectorModelConfiguration"), name)
        )
        with pytest.raises(UserError) as caught:
            load_any(folder / MODEL, "model")
    assert f"$.detectorModel.detectorModelConfiguration.{name}" in str(caught.value)


def test_the_read_only_fields_describe_prints_are_taken_and_dropped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    printed = json.loads((DATA / MODEL).read_text())["detectorModel"]["detectorModelConfiguration"]
    assert set(printed) == set(CONFIGURATION) - {"detectorModelDescription"}
    folder = folder_with(tmp_path, INPUT, lambda document: None)
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "data")])
    assert code == 0, capsys.readouterr().err
    found = registered(tmp_path / "data" / "detectors", "motorHeartbeat")
    assert found is not None
    stored = json.loads(found[0].read_text())
    assert set(stored) == {
        "detectorModelName",
        "roleArn",
        "key",
        "evaluationMethod",
        "detectorModelDefinition",
    }
    stored_input = json.loads(found[1][0].read_text())
    assert set(stored_input) == {"inputName", "inputDescription", "inputDefinition"}
