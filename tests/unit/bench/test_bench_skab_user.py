"""What a user of ``plantwatch bench skab`` sees: progress on stderr, one document on stdout."""

from __future__ import annotations

import argparse
import functools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.bench import skab_cv
from cloud.bench.skab import Experiment
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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_twice(argv: list[str], plots: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """stdout of *argv* without and with ``--plot``."""
    outs = []
    for extra in ([], ["--plot", str(plots)]):
        assert main([*argv, *extra]) == 0
        outs.append(capsys.readouterr().out)
    return outs


def assert_pngs(folder: Path, names: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == names
    for name in names:
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def test_plot_writes_one_png_per_file_and_changes_no_figure(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictions = tmp_path / "pred.csv"
    argv = ["bench", "skab", "--dataset", str(dataset / "valve"), "--json"]
    argv += ["--predictions", str(predictions)]
    assert main(argv) == 0
    first = (capsys.readouterr().out, predictions.read_bytes())
    plots = tmp_path / "plots" / "new"
    assert main([*argv, "--plot", str(plots)]) == 0
    assert (capsys.readouterr().out, predictions.read_bytes()) == first
    assert_pngs(plots, {"valve_0.png", "valve_1.png", "valve_2.png"})


def test_cv_plot_writes_one_png_per_experiment_and_changes_no_figure(
    dataset: Path, small_grid: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "skab", "--dataset", str(dataset), "--cv", "--sim-per-type", "0"]
    argv += ["--slice-rows", "1200", "--json"]
    plain, plotted = run_twice(argv, tmp_path / "plots", capsys)
    assert plain == plotted
    expected = {f"valve_{i}.png" for i in range(3)}
    expected |= {f"anomaly-free_anomaly-free-{k}.png" for k in range(2)}
    assert_pngs(tmp_path / "plots", expected)


def test_cv_plots_show_the_held_out_predictions_the_report_scores(dataset: Path) -> None:
    args = argparse.Namespace(
        dataset=str(dataset), train_rows=400, slice_rows=1200, sim_per_type=0, sim_seed=0
    )
    found, folds = skab_cv.experiments(args)
    grid = skab_cv.settings()[:4]
    tallies = skab_cv.evaluate(found, grid, 400, 60.0)
    scores = skab_cv.fold_scores(tallies, folds)
    chosen = [skab_cv.select(scores, leave_out=fold)[0] for fold in folds]
    shown = list(skab_cv.held_out_detections(found, folds, grid, chosen, 400))
    assert len(shown) == len(found)
    for fold, setting in zip(folds, chosen, strict=True):
        for i in fold.experiments:
            exp, detection = next((e, d) for e, d in shown if e is found[i])
            again = skab_cv.tally(exp, detection, 400, 60.0).figures()
            assert again == tallies[setting][i].figures()


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12)),
        min_size=1,
        max_size=12,
    )
)
def test_plot_names_are_safe_and_unique(pairs: list[tuple[str, str]]) -> None:
    from cloud.bench import skab_plot

    experiments = [Experiment(f"{group}/{name}", group, pd.DataFrame()) for group, name in pairs]
    names = skab_plot.plot_names(experiments)
    assert len(names) == len(set(names)) == len(experiments)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.png", name), name
        assert len(name) <= 120


def test_plot_names_read_group_then_file() -> None:
    from cloud.bench import skab_plot

    experiments = [
        Experiment("valve1/13.csv", "valve1", pd.DataFrame()),
        Experiment("13.csv", "valve1", pd.DataFrame()),
        Experiment("anomaly-free/anomaly-free.csv#3", "anomaly-free", pd.DataFrame()),
        Experiment("simulator/leak-0", "simulator", pd.DataFrame()),
    ]
    assert skab_plot.plot_names(experiments) == [
        "valve1_13.png",
        "valve1_13-2.png",
        "anomaly-free_anomaly-free-3.png",
        "simulator_leak-0.png",
    ]


def test_plot_must_be_a_folder(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = dataset / "valve" / "0.csv"
    assert main(["bench", "skab", "--dataset", str(dataset), "--plot", str(afile)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--plot" in err[0] and "0.csv: not a folder" in err[0]


def test_bench_skab_names_the_unlabelled_files_it_does_not_score(
    dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN SKAB's own layout: labelled groups beside the unlabelled anomaly-free file
    # WHEN the whole folder is scored without --cv
    assert main(["bench", "skab", "--dataset", str(dataset), "--json"]) == 0
    captured = capsys.readouterr()
    # THEN the labelled files are scored and the unlabelled one is named, not passed over
    document = only_json(captured.out)
    assert document["files"] == 3
    assert document["unlabelled"] == ["anomaly-free/anomaly-free.csv"]
    assert "not scored (no anomaly, changepoint columns): anomaly-free/anomaly-free.csv" in (
        captured.err
    )
