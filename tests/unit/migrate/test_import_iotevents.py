"""``plantwatch import iotevents``: describe-* output in, registered models out, with what
cannot run locally named (two detector models, one with a lambda and an sqs action)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from detector_models import boiler_alarm_files

from cloud.adapters.local import InMemoryPublisher, InMemoryStateStore, OutboxNotifier
from cloud.cli.main import main
from cloud.detectors import DetectorEngine, load_detector_model, load_input
from cloud.detectors.actions import LocalActionSink
from cloud.migrate.iotevents import registered
from edge.clock import ManualClock

DATA = Path(__file__).with_name("data") / "iotevents"
WORK_ORDER = "arn:aws:lambda:us-east-1:123456789012:function:open-work-order"
CALLS: list[object] = []


def open_work_order(event: object) -> None:
    """The stand-in for the Lambda function (registered by the tests as a callable)."""
    CALLS.append(event)


def _import(capsys: pytest.CaptureFixture[str], folder: Path, data: Path, *extra: str) -> dict:
    code = main(["import", "iotevents", str(folder), "--data", str(data), "--json", *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_describe_output_is_registered_and_unsupported_actions_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = _import(capsys, DATA, tmp_path / "data")
    models = {m["name"]: m for m in report["models"]}
    assert set(models) == {"motorHeartbeat", "valveWatch"}
    assert models["motorHeartbeat"]["cannot_run_locally"] == 0
    assert models["motorHeartbeat"]["inputs"] == ["PressureInput"]
    # its actions all run, but under plantwatch up nothing sends it PressureInput
    assert models["motorHeartbeat"]["runs_locally"] is False
    assert [(u["model"], u["input"]) for u in report["inputs_not_fed_locally"]] == [
        ("motorHeartbeat", "PressureInput"),
        ("valveWatch", "ValveInput"),
    ]
    assert models["valveWatch"]["runs_locally"] is False
    assert models["valveWatch"]["evaluation_method"] == "SERIAL"
    problems = {p["action"]: p for p in report["cannot_run_locally"]}
    assert set(problems) == {"lambda", "sqs"}
    assert problems["lambda"]["path"] == (
        "$.detectorModel.detectorModelDefinition.states[0].onInput.transitionEvents[0]"
        ".actions[0].lambda"
    )
    assert problems["lambda"]["file"] == "iotevents/describe-detector-model-valveWatch.json"
    assert WORK_ORDER in problems["lambda"]["reason"] and "--lambda" in problems["lambda"]["reason"]
    assert "only on AWS" in problems["sqs"]["reason"]
    # the Create bodies are stored, and load as they would from `detectors validate`
    model_file, inputs, lambdas = registered(tmp_path / "data" / "detectors", "valveWatch")
    model = load_detector_model(model_file)
    assert model.key == "valveId" and model.evaluation_method == "SERIAL"
    assert [load_input(p).name for p in inputs] == ["ValveInput"] and lambdas == {}
    assert "detectorModelArn" not in json.loads(model_file.read_text())


def test_a_registered_callable_makes_the_lambda_action_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    callable_spec = f"{__name__}:open_work_order"
    report = _import(capsys, DATA, tmp_path / "data", "--lambda", f"{WORK_ORDER}={callable_spec}")
    assert [p["action"] for p in report["cannot_run_locally"]] == ["sqs"]
    model_file, inputs, lambdas = registered(tmp_path / "data" / "detectors", "valveWatch")
    assert lambdas == {WORK_ORDER: callable_spec}
    # WHEN the model runs with the registered callable, the stuck valve calls it
    from cloud.detectors.actions import load_callable

    CALLS.clear()
    sink = LocalActionSink(
        OutboxNotifier(tmp_path / "alerts.jsonl"),
        InMemoryPublisher(),
        lambdas={arn: load_callable(spec) for arn, spec in lambdas.items()},
    )
    engine = DetectorEngine(
        load_detector_model(model_file),
        [load_input(p) for p in inputs],
        InMemoryStateStore(),
        ManualClock(1_700_000_000),
        sink,
    )
    engine.put_message("ValveInput", {"valveId": "v7", "position": 10, "commanded": 80})
    assert len(CALLS) == 1
    event = CALLS[0]
    assert isinstance(event, dict) and event["eventName"] == "stuck"
    assert [entry["kind"] for entry in sink.outbox] == ["sqs"]  # recorded, not performed
    # and a second import keeps the callable it already knew
    report = _import(capsys, DATA, tmp_path / "data")
    assert [p["action"] for p in report["cannot_run_locally"]] == ["sqs"]


def test_an_invalid_model_names_its_file_and_path_and_registers_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "iot"
    shutil.copytree(DATA, folder)
    bad = folder / "describe-detector-model-valveWatch.json"
    document = json.loads(bad.read_text())
    states = document["detectorModel"]["detectorModelDefinition"]["states"]
    states[0]["onInput"]["transitionEvents"][0]["nextState"] = "Nowhere"
    bad.write_text(json.dumps(document))
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "data")])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1
    assert "iot/describe-detector-model-valveWatch.json" in err[0]
    assert (
        "$.detectorModel.detectorModelDefinition.states[0].onInput.transitionEvents[0]"
        ".nextState: unknown state 'Nowhere'" in err[0]
    )
    assert not (tmp_path / "data" / "detectors").exists()


def test_an_unknown_input_and_a_stray_file_are_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "iot"
    shutil.copytree(DATA, folder)
    (folder / "describe-input-ValveInput.json").unlink()
    assert main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d")]) == 2
    assert "unknown input 'ValveInput'" in capsys.readouterr().err
    (folder / "notes.json").write_text('{"hello": 1}')
    assert main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d")]) == 2
    assert "notes.json: not describe-detector-model or describe-input output" in (
        capsys.readouterr().err
    )


def test_a_model_on_anomaly_results_runs_under_up(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from cloud.detectors import default_detector_paths

    folder = tmp_path / "iot"
    folder.mkdir()
    for path in default_detector_paths():
        shutil.copy(path, folder / path.name)
    report = _import(capsys, folder, tmp_path / "data", "--strict")
    (model,) = report["models"]
    assert model["runs_locally"] is True and model["inputs"] == ["AnomalyResults"]
    assert report["cannot_run_locally"] == [] and report["inputs_not_fed_locally"] == []


def test_strict_fails_when_something_cannot_run_locally(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["import", "iotevents", str(DATA), "--data", str(tmp_path / "d"), "--strict"])
    out = capsys.readouterr().out
    assert code == 1
    assert "cannot run locally" in out and "valveWatch" in out


def test_a_lambda_option_must_name_a_callable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["import", "iotevents", str(DATA), "--data", str(tmp_path / "d"), "--lambda"]
    assert main([*argv, f"{WORK_ORDER}=no_such_module_x:f"]) == 2
    assert "cannot import no_such_module_x" in capsys.readouterr().err
    assert main([*argv, "no-equals-sign"]) == 2
    assert "expected ARN=package.module:function" in capsys.readouterr().err


def test_up_finds_a_registered_model_by_name(tmp_path: Path) -> None:
    from cloud.cli.up import _registered

    data = tmp_path / "data"
    assert main(["import", "iotevents", str(DATA), "--data", str(data)]) == 0
    model, inputs, lambdas = _registered(str(data), Path("motorHeartbeat"))
    assert model.name == "motorHeartbeat.json"
    assert [p.name for p in inputs] == ["PressureInput.json"] and lambdas == ()
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match="no model of that name registered"):
        _registered(str(data), Path("nope"))


def test_an_alarm_model_reading_an_input_nothing_feeds_is_reported_and_fails_strict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = boiler_alarm_files(tmp_path / "iot", "Boiler")
    report = _import(capsys, folder, tmp_path / "data")
    assert [(u["model"], u["input"]) for u in report["inputs_not_fed_locally"]] == [
        ("boilerHot", "Boiler")
    ]
    code = main(["import", "iotevents", str(folder), "--data", str(tmp_path / "d"), "--strict"])
    out = capsys.readouterr().out
    assert code == 1
    assert "boilerHot" in out and "Boiler" in out


def test_an_alarm_models_unfed_input_names_what_can_feed_it_not_a_replay_it_refuses(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``detectors run`` replays detector models only (an alarm model file holds no detector
    model), so the reason given for an alarm model's input points at what feeds one under
    ``plantwatch up``: a detector model's ``iotEvents`` action to that input."""
    folder = boiler_alarm_files(tmp_path / "iot", "Boiler")
    [unfed] = _import(capsys, folder, tmp_path / "data")["inputs_not_fed_locally"]
    messages = tmp_path / "m.jsonl"
    messages.write_text('{"inputName": "Boiler", "payload": {"id": "b1", "temp": 95}}\n')
    run = ["detectors", "run", str(folder / "alarm.json"), "--input", str(folder / "input.json")]
    assert main([*run, "--messages", str(messages)]) == 2  # not a detector model
    capsys.readouterr()
    assert "detectors run" not in unfed["reason"]
    assert "iotEvents action" in unfed["reason"]


def test_an_alarm_models_unfed_input_names_the_alarm_replay_that_runs_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = boiler_alarm_files(tmp_path / "iot", "Boiler")
    [unfed] = _import(capsys, folder, tmp_path / "data")["inputs_not_fed_locally"]
    assert "plantwatch alarms run replays it" in unfed["reason"]
    messages = tmp_path / "m.jsonl"
    messages.write_text('{"inputName": "Boiler", "payload": {"id": "b1", "temp": 95}}\n')
    run = ["alarms", "run", str(folder / "alarm.json"), str(messages)]
    assert main([*run, "--input", str(folder / "input.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["alarms"]


def test_an_alarm_model_on_the_scoring_results_runs_locally(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from cloud.feeder import INPUT_NAME

    folder = boiler_alarm_files(tmp_path / "iot", INPUT_NAME)
    report = _import(capsys, folder, tmp_path / "data", "--strict")
    assert report["inputs_not_fed_locally"] == []


def test_the_printed_next_step_runs_from_a_data_folder_with_a_space(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import shlex

    data = tmp_path / "plant data"
    folder = boiler_alarm_files(tmp_path / "iot", "Boiler")
    assert main(["import", "iotevents", str(folder), "--data", str(data)]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("next: ")]
    argv = shlex.split(line.removeprefix("next: "))
    assert argv[:4] == ["plantwatch", "up", "--data", str(data)]
    assert Path(argv[argv.index("--alarm-model") + 1]).is_file()


def test_an_alarm_only_import_says_where_it_registered_and_no_empty_model_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = boiler_alarm_files(tmp_path / "iot", "Boiler")
    assert main(["import", "iotevents", str(folder), "--data", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "nothing to show" not in out
    assert out.splitlines()[0] == f"alarm models registered in {tmp_path / 'data' / 'detectors'}"
