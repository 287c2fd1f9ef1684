"""`plantwatch up --alarm-model NAME` finds an alarm model `import iotevents` registered:
its stored file moves into a new set with each import, its name stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.cli.up import _alarm_model_file
from edge.errors import ConfigError


def _registry(data: Path, alarms: dict[str, str]) -> Path:
    detectors = data / "detectors"
    detectors.mkdir(parents=True)
    (detectors / "registry.json").write_text(
        json.dumps(
            {
                "models": {},
                "inputs": {},
                "alarm_models": {n: {"file": f} for n, f in alarms.items()},
            }
        )
    )
    return detectors


def test_a_registered_alarm_name_gives_its_stored_file(tmp_path: Path) -> None:
    detectors = _registry(tmp_path / "data", {"boilerHot": "sets/ab12/alarm-models/boilerHot.json"})
    found = _alarm_model_file(str(tmp_path / "data"), Path("boilerHot"))
    assert found == detectors / "sets/ab12/alarm-models/boilerHot.json"


def test_a_file_is_taken_as_it_is(tmp_path: Path) -> None:
    _registry(tmp_path / "data", {})
    own = tmp_path / "alarm.json"
    own.write_text("{}")
    assert _alarm_model_file(str(tmp_path / "data"), own) == own


def test_neither_a_file_nor_a_registered_name_is_one_clear_error(tmp_path: Path) -> None:
    _registry(tmp_path / "data", {"boilerHot": "sets/ab12/alarm-models/boilerHot.json"})
    with pytest.raises(ConfigError, match="--alarm-model boilerCold: no such file, and no alarm"):
        _alarm_model_file(str(tmp_path / "data"), Path("boilerCold"))
