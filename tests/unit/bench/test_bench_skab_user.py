"""What a user of ``plantwatch bench skab`` sees: progress on stderr, one document on stdout."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cloud.bench import skab_cv
from cloud.cli import output
from cloud.cli.main import main


def write_skab_file(path: Path, seed: int, rows: int = 1100, labelled: bool = True) -> None:
    """A SKAB-shaped CSV: ';'-separated, a sustained drop of flow from row 570 to 900."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2020-03-09 10:00:00", periods=rows, freq="1s", name="datetime")
    frame = pd.DataFrame(
        {
            "Accelerometer1RMS": rng.normal(0.027, 0.001, rows),
            "Current": rng.normal(1.3, 0.05, rows),
            "Temperature": 70 + np.cumsum(rng.normal(0, 0.02, rows)),
            "Volume Flow RateRMS": rng.normal(32, 1, rows),
        },
        index=index,
    )
    if labelled:
        anomaly = np.zeros(rows)
        anomaly[570:900] = 1
        frame.loc[anomaly == 1, "Volume Flow RateRMS"] -= 4
        changepoint = np.zeros(rows)
        changepoint[[570, 900]] = 1
        frame["anomaly"], frame["changepoint"] = anomaly, changepoint
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep=";", date_format="%Y-%m-%d %H:%M:%S")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "skab"
    for i in range(3):
        write_skab_file(root / "valve" / f"{i}.csv", i)
    write_skab_file(root / "anomaly-free" / "anomaly-free.csv", 9, rows=2400, labelled=False)
    return root


@pytest.fixture
def eager_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress lines from the first moment (piped, the bar waits 2 s before a first line)."""
    monkeypatch.setattr(
        output, "progress", functools.partial(output.progress, after_s=0, interval_s=3600)
    )


@pytest.fixture
def small_grid(monkeypatch: pytest.MonkeyPatch) -> int:
    """The first settings of the grid: the protocol unchanged, the test quick."""
    grid = skab_cv.settings()[:4]
    monkeypatch.setattr(skab_cv, "settings", lambda: grid)
    return len(grid)


def only_json(text: str) -> dict:
    """The document, after checking stdout holds it and nothing else."""
    document = json.loads(text)
    assert text == json.dumps(document, indent=2) + "\n"
    return document


def test_bench_skab_shows_progress_on_stderr_and_only_json_on_stdout(
    dataset: Path, eager_progress: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "skab", "--dataset", str(dataset / "valve"), "--json"]) == 0
    captured = capsys.readouterr()
    assert only_json(captured.out)["files"] == 3
    lines = captured.err.splitlines()
    assert any("scoring 3 files" in line for line in lines)
    assert any("scoring 3 files done 3/3" in line for line in lines)


def test_bench_skab_cv_names_its_stages_on_stderr_and_only_json_on_stdout(
    dataset: Path, eager_progress: None, small_grid: int, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bench", "skab", "--dataset", str(dataset), "--cv", "--sim-per-type", "0"]
    assert main([*args, "--slice-rows", "1200", "--json"]) == 0
    captured = capsys.readouterr()
    document = only_json(captured.out)
    assert len(document["settings"]) == small_grid
    err = captured.err
    stages = [
        f"cross-validation: evaluating {small_grid} settings on 5 experiments",
        "cross-validation: selecting per fold",
    ]
    assert all(stage in err for stage in stages)
    assert err.index(stages[0]) < err.index(stages[1])


def test_cv_evaluation_reports_each_setting_scored_through_a_plain_callback(
    dataset: Path,
) -> None:
    found = [skab_cv.read_experiment(p, dataset, 400) for p in sorted(dataset.glob("valve/*.csv"))]
    grid = skab_cv.settings()[:3]
    calls: list[None] = []
    tallies = skab_cv.evaluate(found, grid, 400, 60.0, lambda: calls.append(None))
    assert len(calls) == len(found) * len(grid)
    assert [len(row) for row in tallies] == [len(found)] * len(grid)
