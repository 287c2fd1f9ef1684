"""The inference benches run on small generated data and report their documented keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cloud.cli.main import main


def skab_file(path: Path, seed: int) -> None:
    """SKAB's shape: ';'-separated, datetime first, a sustained fault from row 570 to 900."""
    rng = np.random.default_rng(seed)
    rows = 1100
    index = pd.date_range("2020-03-09 10:00:00", periods=rows, freq="1s")
    frame = pd.DataFrame(
        {
            "Accelerometer1RMS": rng.normal(0.027, 0.001, rows),
            "Current": rng.normal(1.3, 0.05, rows),
            "Pressure": rng.normal(0.1, 0.2, rows),
            "Temperature": 70 + np.cumsum(rng.normal(0, 0.02, rows)),
            "Volume Flow RateRMS": rng.normal(32, 1, rows),
        },
        index=index,
    )
    anomaly = np.zeros(rows)
    anomaly[570:900] = 1
    frame.loc[anomaly == 1, "Volume Flow RateRMS"] -= 4
    changepoint = np.zeros(rows)
    changepoint[[570, 900]] = 1
    frame["anomaly"], frame["changepoint"] = anomaly, changepoint
    frame.to_csv(path, sep=";", index_label="datetime", date_format="%Y-%m-%d %H:%M:%S")


def test_bench_skab_reports_keys_and_writes_predictions(tmp_path: Path, capsys) -> None:
    data = tmp_path / "skab" / "valve"
    data.mkdir(parents=True)
    for i in range(2):
        skab_file(data / f"{i}.csv", i)
    (data / "notes.csv").write_text("a,b\n1,2\n")  # not a SKAB file: skipped
    out = tmp_path / "pred.csv"
    assert (
        main(
            [
                "bench",
                "skab",
                "--dataset",
                str(tmp_path / "skab"),
                "--predictions",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert {"f1", "far_pct", "mar_pct", "nab_standard", "nab_lowfp", "nab_lowfn"} <= set(doc)
    assert doc["files"] == 2 and doc["scored_rows"] == 2 * 700
    assert doc["f1"] > 0.8 and doc["far_pct"] < 10
    predictions = pd.read_csv(out)
    assert list(predictions.columns) == ["file", "datetime", "anomaly", "changepoint"]
    assert set(predictions["file"]) == {"valve/0.csv", "valve/1.csv"}
    assert len(predictions) == 1400
    assert set(predictions["anomaly"]) <= {0, 1} and predictions["changepoint"].sum() >= 2


def test_bench_skab_without_files_is_bad_input(tmp_path: Path, capsys) -> None:
    assert main(["bench", "skab", "--dataset", str(tmp_path), "--json"]) == 2
    assert "no labelled SKAB CSV" in capsys.readouterr().err


def test_bench_train_reports_keys(capsys) -> None:
    argv = ["bench", "train", "--rows", "5000", "--sensors", "6", "--repeat", "1", "--json"]
    assert main([*argv, "--csv-days", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] == 5000 and doc["sensors"] == 6
    assert doc["train_s"] >= 0 and doc["score_rows_per_s"] > 0
    assert doc["modes"] == 3
    assert "end_to_end_s" not in doc


def test_bench_train_runs_model_train_from_csv_in_a_child(capsys) -> None:
    argv = ["bench", "train", "--rows", "2000", "--sensors", "4", "--repeat", "1", "--json"]
    assert main([*argv, "--csv-days", "2", "--csv-rate", "10min", "--csv-runs", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["end_to_end"]["trained"] and doc["end_to_end"]["csv_files"] == 3
    assert len(doc["end_to_end_s_runs"]) == len(doc["peak_rss_mb_runs"]) == 2
    assert doc["end_to_end_s"] > 0 and 40 < doc["peak_rss_mb"] < 2000  # a Python process
    ratio = doc["peak_rss_mb"] / doc["csv_mb"]
    assert doc["peak_rss_per_csv_size"] == pytest.approx(ratio, rel=0.1)
