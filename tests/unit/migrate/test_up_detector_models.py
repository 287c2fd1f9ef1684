"""``plantwatch up --detector-model`` given more than once: every model runs on one list
of inputs, and two models of one name (one state namespace) are refused before the start."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from detector_models import relay_chain_files

from cloud.cli.main import build_parser, main
from cloud.cli.up import resolve_models
from cloud.detectors import load_detector_model, load_input
from edge.errors import ConfigError


def _args(data: Path, *extra: str) -> argparse.Namespace:
    return build_parser("up").parse_args(["up", "--data", str(data), *extra])


def test_every_registered_model_runs_with_the_inputs_each_reads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert (
        main(["import", "iotevents", str(relay_chain_files(tmp_path / "iot")), "--data", str(data)])
        == 0
    )
    models, inputs, _lambdas, _alarms = resolve_models(
        _args(data, "--detector-model", "spotter", "--detector-model", "relayed")
    )
    assert [load_detector_model(m).name for m in models] == ["spotter", "relayed"]
    assert sorted(load_input(i).name for i in inputs) == ["AnomalyResults", "Relay"]


def test_one_model_given_twice_is_refused_naming_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = relay_chain_files(tmp_path / "iot")
    assert main(["import", "iotevents", str(folder), "--data", str(data)]) == 0
    args = _args(
        data, "--detector-model", "spotter", "--detector-model", str(folder / "spotter.json")
    )
    with pytest.raises(ConfigError, match="'spotter' is also"):
        resolve_models(args)
