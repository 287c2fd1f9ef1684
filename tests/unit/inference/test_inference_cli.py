"""The CLI end to end on local state: train, evaluate, schedulers, executions, events."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
from conftest import plant_frame

from cloud.cli.main import main
from cloud.inference.episodes import DEFAULT_ALARM
from cloud.runtime.layout import DataLayout


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    frame = plant_frame(rows=20 * 144, seed=2)
    frame.index = pd.date_range("2026-01-01", periods=len(frame), freq="10min", tz="UTC")
    frame.iloc[2000:2050, 1] -= 60
    folder = tmp_path / "ds" / "pump"
    folder.mkdir(parents=True)
    frame.rename(columns=lambda c: c.split("\\")[1]).to_csv(
        folder / "pump.csv", date_format="%Y-%m-%d %H:%M:%S", index_label="Timestamp"
    )
    labels = tmp_path / "labels.csv"
    start, end = frame.index[2000], frame.index[2049]
    labels.write_text(f"{start:%Y-%m-%dT%H:%M:%S.%f},{end:%Y-%m-%dT%H:%M:%S.%f}\n")
    return tmp_path / "ds", labels


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_train_evaluate_and_versions(dataset, tmp_path: Path, capsys) -> None:
    ds, labels = dataset
    data = str(tmp_path / "state")
    trained = run_json(
        capsys,
        "model",
        "train",
        "--data",
        data,
        "--dataset",
        str(ds),
        "--labels",
        str(labels),
        "--name",
        "pump",
        "--train-end",
        "2026-01-13",
        "--eval-start",
        "2026-01-13",
        "--json",
    )
    assert trained["ModelVersion"] == 1
    assert trained["Grades"]["pump\\flow"] in {"High", "Medium"}
    assert trained["Evaluation"]["events_detected"] == 1
    evaluated = run_json(
        capsys,
        "model",
        "evaluate",
        "--data",
        data,
        "--dataset",
        str(ds),
        "--labels",
        str(labels),
        "--name",
        "pump",
        "--json",
    )
    # the alarm rules raise on the 8th row above threshold: 43 of the fault's 50 rows
    assert evaluated["recall"] > 0.8 and evaluated["false_alarm_rate_pct"] < 1
    assert set(evaluated) >= {
        "precision",
        "recall",
        "f1",
        "false_alarm_rate_pct",
        "detection_delay_s",
    }
    run_json(
        capsys, "model", "train", "--data", data, "--dataset", str(ds), "--name", "pump", "--json"
    )
    assert DataLayout(Path(data)).registry().versions("pump") == [1, 2]
    described = run_json(capsys, "model", "describe", "pump", "--data", data, "--json")
    assert described["Config"]["alarm"]["episodes"] == asdict(DEFAULT_ALARM.episodes)  # not text
    assert main(["model", "describe", "pump", "--data", data]) == 0
    raised = DEFAULT_ALARM.episodes.raise_rows
    assert f"config alarm.episodes       raise_rows={raised}, " in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line(dataset, tmp_path: Path, capsys) -> None:
    ds, _ = dataset
    code = main(
        [
            "model",
            "train",
            "--data",
            str(tmp_path),
            "--dataset",
            str(ds),
            "--name",
            "m",
            "--sampling-rate",
            "PT2M",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TargetSamplingRate 'PT2M'" in err[0]


def test_schedulers_executions_events(dataset, tmp_path: Path, capsys) -> None:
    ds, labels = dataset
    data = tmp_path / "state"
    run_json(
        capsys,
        "model",
        "train",
        "--data",
        str(data),
        "--dataset",
        str(ds),
        "--labels",
        str(labels),
        "--name",
        "pump",
        "--no-alarm-rules",  # one anomalous row is a prediction of its own
        "--json",
    )
    created = run_json(
        capsys, "schedulers", "create", "s1", "--model", "pump", "--data", str(data), "--json"
    )
    assert created["Status"] == "RUNNING"
    tabbed = run_json(
        capsys,
        *("schedulers", "create", "s2", "--model", "pump", "--data", str(data), "--json"),
        *("--input-prefix", "tab/", "--delimiter", "\t"),  # AWS's pattern: any \s
    )
    naming = tabbed["DataInputConfiguration"]["InferenceInputNameConfiguration"]
    assert naming["ComponentTimestampDelimiter"] == "\t"
    assert main(["schedulers", "stop", "s2", "--data", str(data)]) == 0
    assert main(["schedulers", "delete", "s2", "--data", str(data)]) == 0
    capsys.readouterr()
    inbox = data / "buckets" / "input" / "input"
    inbox.mkdir(parents=True)
    (inbox / "pump_20260201000500.csv").write_text(
        "Timestamp,motor_current,flow,pressure,temperature\n"
        "2026-02-01T00:01:00.000000,8.0,120,3.0,44\n"
        "2026-02-01T00:03:00.000000,8.1,30,3.0,44\n"
    )
    runs = run_json(
        capsys,
        "schedulers",
        "run",
        "s1",
        "--window-end",
        "2026-02-01T00:05:00",
        "--data",
        str(data),
        "--json",
    )
    assert runs[0]["status"] == "SUCCESS"
    out = data / "buckets" / "output" / "output" / "2026-02-01T00:00:00Z" / "results.jsonl"
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["prediction"] for x in lines] == [0, 1]
    assert (
        main(
            ["schedulers", "run", "s1", "--window-end", "2026-02-01T00:10:00", "--data", str(data)]
        )
        == 1
    )
    capsys.readouterr()
    listed = run_json(capsys, "executions", "--scheduler", "s1", "--data", str(data), "--json")
    assert [x["Status"] for x in listed] == ["FAILED", "SUCCESS"]
    assert listed[0]["FailedReason"].startswith("Could not find data file for sensor pump")
    # §6: CustomerResultObject is one S3Object {Bucket, Key}, on success only
    assert "CustomerResultObject" not in listed[0]
    assert listed[1]["CustomerResultObject"] == {
        "Bucket": "output",
        "Key": "output/2026-02-01T00:00:00Z/results.jsonl",
    }
    events = run_json(capsys, "events", "--scheduler", "s1", "--data", str(data), "--json")
    assert [(e["EventStartTime"], e["EventDurationInSeconds"]) for e in events] == [
        ("2026-02-01T00:03:00.000000Z", 0)
    ]
    diagnostics = json.loads(events[0]["Diagnostics"])["diagnostics"]
    assert max(diagnostics, key=lambda d: d["value"])["name"] == "pump\\flow"


def test_train_reads_flat_files_at_the_chosen_key_pattern_delimiter(
    dataset, tmp_path: Path, capsys
) -> None:
    """l4e-contracts §1.1: {prefix}/{component_name}[DELIMITER]* with a hyphen."""
    ds, _ = dataset
    flat = tmp_path / "flat"
    flat.mkdir()
    body = (ds / "pump" / "pump.csv").read_text().splitlines(keepends=True)
    half = len(body) // 2
    (flat / "pump-2026-01.csv").write_text("".join(body[:half]))
    (flat / "pump-2026-02.csv").write_text(body[0] + "".join(body[half:]))
    data = str(tmp_path / "state")
    argv = ["model", "train", "--data", data, "--dataset", str(flat), "--name", "pump"]
    trained = run_json(capsys, *argv, "--flat-delimiter", "-", "--json")
    assert sorted(trained["Grades"]) == [
        "pump\\flow",
        "pump\\motor_current",
        "pump\\pressure",
        "pump\\temperature",
    ]
    assert main([*argv, "--flat-delimiter", "/"]) == 2
    assert "--flat-delimiter: invalid choice" in capsys.readouterr().err


def test_schedulers_run_keeps_each_run_within_the_claim_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``schedulers run`` (local or ``--aws``) runs the inference engine in this process,
    where no function timeout stops it while its claims lapse after CLAIM_S: every run of
    due windows, the first and each one ``--follow`` makes, gets CLAIM_S as its budget."""
    import argparse

    from cloud.cli import schedulers
    from cloud.inference.scheduler import CLAIM_S
    from edge.clock import ManualClock

    budgets: list[float | None] = []

    class _Scheduler:
        def run_due(self, *, budget_s: float | None = None) -> list[object]:
            budgets.append(budget_s)
            if len(budgets) == 3:
                raise KeyboardInterrupt  # Ctrl-C ends --follow
            return []

        def next_window(self) -> float:
            return 0.0

    class _Stack:
        def scheduler(self, name: str, clock: object) -> _Scheduler:
            return _Scheduler()

    args = argparse.Namespace(name="s1", window_end=None, follow=False, json=True)
    assert schedulers._run(args, _Stack(), ManualClock()) == 0
    args.follow = True
    with pytest.raises(KeyboardInterrupt):
        schedulers._run(args, _Stack(), ManualClock())
    assert budgets == [CLAIM_S, CLAIM_S, CLAIM_S]
