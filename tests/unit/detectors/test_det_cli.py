"""``plantwatch detectors validate`` and ``plantwatch bench detectors``: exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.cli.main import main
from cloud.detectors import default_detector_paths

MODEL, INPUT = default_detector_paths()


def test_validate_ok_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detectors", "validate", str(MODEL), "--input", str(INPUT)]) == 0
    out = capsys.readouterr().out
    assert "valid detector model 'equipment_anomaly': 3 states (Normal, Alarm, Stale)" in out


def test_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detectors", "validate", str(MODEL), "--input", str(INPUT), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True and doc["key"] == "asset" and doc["inputs"] == ["AnomalyResults"]


def test_validate_without_the_input_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detectors", "validate", str(MODEL)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "unknown input 'AnomalyResults'" in err[0]


def test_validate_reports_one_line_with_the_json_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.loads(MODEL.read_text())
    body["detectorModelDefinition"]["states"][1]["onInput"]["events"][0]["condition"] = (
        "$input.Temp.x > 1"
    )
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps(body))
    assert main(["detectors", "validate", str(bad), "--input", str(INPUT)]) == 2
    assert capsys.readouterr().err == (
        "plantwatch: error: model.json: $.detectorModelDefinition.states[1].onInput.events[0].condition:"
        " unknown input 'Temp' (expected: AnomalyResults)\n"
    )


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("9" * 5000, "a number with too many digits"),
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ],
)
def test_validate_unusable_json_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tail: str, expected: str
) -> None:
    bad = tmp_path / "model.json"
    bad.write_text(MODEL.read_text().rstrip()[:-1] + ', "tags": ' + tail + "}")
    assert main(["detectors", "validate", str(bad), "--input", str(INPUT)]) == 2
    assert (
        capsys.readouterr().err == f"plantwatch: error: model.json: not usable JSON: {expected}\n"
    )


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detectors", "validate", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err


def test_list_without_state_db_is_an_empty_listing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As `schedulers list` and `executions`: the folder exists, no stack has run yet."""
    assert main(["detectors", "list", "--data", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("no detector instances yet")
    assert list(tmp_path.iterdir()) == []  # a read creates nothing
    assert main(["detectors", "list", "--data", str(tmp_path / "missing")]) == 2


def test_bench_detectors_reports_inputs_per_s(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "bench",
                "detectors",
                "--json",
                "--messages",
                "60",
                "--repeat",
                "1",
                "--timer-instances",
                "20",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["inputs_per_s"] > 0
    assert doc["timer_evals_per_s"] > 0 and doc["timer_instances"] == 20
    assert set(doc["stores"]) == {"memory", "sqlite"}
    assert doc["baseline"]["store"] == "memory" and doc["baseline"]["ratio"] > 0


def test_list_filters_by_state_as_list_detectors_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detector_models import RecordingSink, event, one_state_model

    from cloud.adapters.local.sqlite_state_store import SqliteStateStore
    from cloud.detectors import DetectorEngine, load_detector_model, load_input
    from edge.clock import ManualClock

    body = one_state_model(
        event({"setVariable": {"variableName": "v", "value": "$input.In.v"}}), name="m"
    )
    body["detectorModelDefinition"]["states"].append({"stateName": "B"})
    in_def = {
        "inputName": "In",
        "inputDefinition": {"attributes": [{"jsonPath": "id"}, {"jsonPath": "v"}]},
    }
    with SqliteStateStore(tmp_path / "state.db") as store:
        engine = DetectorEngine(
            load_detector_model(body), [load_input(in_def)], store, ManualClock(), RecordingSink()
        )
        for key, state in (("k1", "A"), ("k2", "B"), ("k3", "A")):
            engine.update_detector(key, {"stateName": state})
    data = ["--data", str(tmp_path)]
    assert main(["detectors", "list", *data, "--state", "A", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["keyValue"], r["state"]["stateName"]) for r in rows] == [("k1", "A"), ("k3", "A")]
    assert main(["detectors", "list", *data, "--state", "B"]) == 0
    out = capsys.readouterr().out
    assert "k2" in out and "k1" not in out and "k3" not in out
    assert main(["detectors", "list", *data, "--state", "Nowhere"]) == 0
    assert "no detector instances" in capsys.readouterr().out
