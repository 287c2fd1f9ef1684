"""`plantwatch up` with an imported detector model and an imported alarm model that reads
another input (one the detector model's ``iotEvents`` action feeds): the stack gives the
alarm engine the inputs its model reads, as `import iotevents` registered them."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
from detector_models import boiler_alarm_files

from cloud.adapters.local import InMemoryStateStore
from cloud.cli.main import build_parser, main
from cloud.cli.up import resolve_models
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.alarms import AlarmEngine, load_alarm_model
from edge.clock import ManualClock
from edge.errors import UserError

DATA = Path(__file__).with_name("data") / "iotevents"


def _imported(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(DATA, folder)
    boiler_alarm_files(folder, "Boiler")
    data = tmp_path / "data"
    assert main(["import", "iotevents", str(folder), "--data", str(data)]) == 0
    return data


def _args(data: Path, *extra: str) -> argparse.Namespace:
    return build_parser("up").parse_args(["up", "--data", str(data), *extra])


class _Sink:
    def perform(self, *_args: object, **_kwargs: object) -> None:
        raise AssertionError("no action is expected")


def test_an_imported_alarm_model_gets_the_input_it_reads_beside_the_detector_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _imported(tmp_path)
    capsys.readouterr()
    args = _args(data, "--detector-model", "motorHeartbeat", "--alarm-model", "boilerHot")
    (model,), inputs, _lambdas, alarms = resolve_models(args)
    loaded = [load_input(p) for p in inputs]
    assert sorted(i.name for i in loaded) == ["Boiler", "PressureInput"]
    (alarm,) = alarms
    # the stack builds both engines on the one list of inputs
    DetectorEngine(
        load_detector_model(model), loaded, InMemoryStateStore(), ManualClock(0), _Sink()
    )
    AlarmEngine(load_alarm_model(alarm), loaded, InMemoryStateStore(), ManualClock(0), _Sink())


def test_the_printed_next_step_resolves_to_models_that_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shlex

    data = _imported(tmp_path)
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("next: ")]
    args = _args(data, *shlex.split(line.removeprefix("next: "))[4:])
    _models, inputs, _lambdas, alarms = resolve_models(args)
    loaded = [load_input(p) for p in inputs]
    for alarm in alarms:
        AlarmEngine(load_alarm_model(alarm), loaded, InMemoryStateStore(), ManualClock(0), _Sink())


def test_an_alarm_model_reading_an_input_the_stack_lacks_is_refused_before_it_starts(
    tmp_path: Path,
) -> None:
    """An alarm model given as a file that no import registered, beside a detector model
    whose inputs do not hold the one it reads: refused with the input named, before the
    broker starts, as the stack would refuse it mid-start."""
    data = tmp_path / "data"
    assert main(["import", "iotevents", str(DATA), "--data", str(data)]) == 0
    own = tmp_path / "own"
    own.mkdir()
    boiler_alarm_files(own, "Boiler")
    args = _args(
        data, "--detector-model", "motorHeartbeat", "--alarm-model", str(own / "alarm.json")
    )
    with pytest.raises(UserError, match="unknown input 'Boiler'"):
        resolve_models(args)
