"""The inference benches run on small generated data and report their documented keys."""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cloud.bench import skab_cv
from cloud.bench.skab import (
    SKAB_CONFIG_FIELDS,
    SKAB_EPISODE_FIELDS,
    Experiment,
    detect,
    find_files,
)
from cloud.cli.main import main


def skab_frame(seed: int, settle: float = 0.0, rows: int = 1100) -> pd.DataFrame:
    """SKAB's shape: a sustained fault from row 570 to 900 (flow drops by 4 sigma); after
    it the plant runs *settle* sigma of flow and current away from where it started."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2020-03-09 10:00:00", periods=rows, freq="1s", name="datetime")
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
    frame.iloc[900:, frame.columns.get_loc("Volume Flow RateRMS")] += settle
    frame.iloc[900:, frame.columns.get_loc("Current")] += settle * 0.05
    changepoint = np.zeros(rows)
    changepoint[[570, 900]] = 1
    frame["anomaly"], frame["changepoint"] = anomaly, changepoint
    return frame


def skab_file(path: Path, seed: int, settle: float = 0.0) -> None:
    write_skab(path, skab_frame(seed, settle))


def write_skab(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep=";", date_format="%Y-%m-%d %H:%M:%S")


def test_bench_skab_passes_over_pipes_devices_and_endless_lines(tmp_path: Path) -> None:
    # GIVEN a SKAB file among a named pipe with no writer, /dev/zero and a 1 MiB first line
    skab_file(tmp_path / "1.csv", 1)
    os.mkfifo(tmp_path / "2.csv")
    (tmp_path / "3.csv").symlink_to("/dev/zero")
    (tmp_path / "4.csv").write_text("datetime;" + "x" * (1 << 20) + "\n")
    found: list[tuple[list[Path], list[Path]]] = []
    # WHEN the files are looked for (on a thread: a blocking open must fail the test)
    worker = threading.Thread(target=lambda: found.append(find_files(tmp_path)), daemon=True)
    worker.start()
    worker.join(10)
    # THEN only the SKAB file is found, at once
    assert found == [([tmp_path / "1.csv"], [])]


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
    assert list(predictions.columns) == ["file", "datetime", "anomaly", "changepoint", "score"]
    assert set(predictions["file"]) == {"valve/0.csv", "valve/1.csv"}
    assert len(predictions) == 1400
    assert set(predictions["anomaly"]) <= {0, 1} and predictions["changepoint"].sum() >= 2
    assert predictions["score"].between(0, 1).all()
    assert ((predictions["score"] > 0.5) | (predictions["anomaly"] == 0)).mean() > 0.9


def test_labels_are_never_seen_by_the_detector(tmp_path: Path, capsys) -> None:
    """Shuffled label columns change the scores of the predictions, never the predictions."""
    frame = skab_frame(3, settle=-1.5)
    rng = np.random.default_rng(0)
    shuffled = frame.assign(
        anomaly=rng.permutation(frame["anomaly"].to_numpy()),
        changepoint=rng.permutation(frame["changepoint"].to_numpy()),
    )
    docs, predictions = [], []
    for name, data in (("real", frame), ("shuffled", shuffled)):
        write_skab(tmp_path / name / "0.csv", data)
        out = tmp_path / f"{name}.csv"
        # --data, the old name, as the held-out scoring command spells it
        args = ["bench", "skab", "--data", str(tmp_path / name), "--predictions", str(out)]
        assert main([*args, "--json"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
        predictions.append(pd.read_csv(out).drop(columns="file"))
    pd.testing.assert_frame_equal(predictions[0], predictions[1])
    assert docs[0]["f1"] > 0.8 > docs[1]["f1"]


def test_an_alarm_clears_when_the_plant_settles_elsewhere_after_the_fault() -> None:
    frame = skab_frame(4, settle=-1.5)  # the fault was -4 sigma of flow; after it, -1.5
    sensors = Experiment("f", "g", frame).sensors()
    plain = {"end_back": None, "turn_cos": None, "clear_settle_rows": 0}  # a debounce
    held = detect(sensors, 400, SKAB_CONFIG_FIELDS, {**SKAB_EPISODE_FIELDS, **plain})
    ended = detect(sensors, 400)
    during, after = slice(570 - 400 + 40, 900 - 400), slice(900 - 400 + 90, None)
    assert held.anomaly[during].mean() > 0.9 and ended.anomaly[during].mean() > 0.9
    assert held.anomaly[after].mean() > 0.9  # alarming to the end of the file, as before
    assert ended.anomaly[after].mean() < 0.05


def test_bench_skab_cv_reports_every_fold_and_the_totals(tmp_path: Path, capsys) -> None:
    for i in range(3):
        skab_file(tmp_path / "valve" / f"{i}.csv", i, settle=-1.5 * (i == 2))
    free = skab_frame(9, rows=2400).drop(columns=["anomaly", "changepoint"])
    write_skab(tmp_path / "anomaly-free" / "anomaly-free.csv", free)
    args = ["bench", "skab", "--dataset", str(tmp_path), "--cv", "--sim-per-type", "0"]
    assert main([*args, "--slice-rows", "1200", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    keys = {"f1", "far_pct", "mar_pct", "nab_standard", "nab_lowfp", "nab_lowfn"}
    assert [f["fold"] for f in doc["folds"]] == [
        "valve/0.csv",
        "valve/1.csv",
        "valve/2.csv",
        "anomaly-free/anomaly-free.csv",
    ]
    for fold in doc["folds"]:
        assert keys <= set(fold) and 0 <= fold["setting"] < len(doc["settings"])
    assert doc["folds"][-1]["files"] == 2 and doc["folds"][-1]["scored_rows"] == 2 * 800
    assert set(doc["total"]) == {"valve", "anomaly-free"}
    assert all(keys <= set(t) for t in doc["total"].values())
    assert doc["selected"]["in_sample"]["valve"]["f1"] > 0.8
    assert doc["shipped"]["setting"] is not None
    assert doc["shipped"]["merit"] <= doc["selected"]["merit"]


def test_cv_choice_weighs_the_worst_fold_and_leaves_the_scored_fold_out() -> None:
    a, b, c, d = (skab_cv.Fold("g", name, (i,), True) for i, name in enumerate("abcd"))
    steady = {a: 2.5, b: 2.5, c: 2.5, d: 0.5}
    brittle = {a: 2.9, b: 2.9, c: 1.5, d: 0.5}  # better mean, far behind on one fold
    assert skab_cv.select([brittle, steady])[0] == 1
    assert skab_cv.select([brittle, steady], leave_out=c)[0] == 0
    hopeless = {a: 2.5, b: 2.5, c: 2.5, d: 0.4}  # d: no setting detects it; it decides little
    assert skab_cv.select([hopeless, brittle])[0] == 0
    assert skab_cv.fold_score({"f1": 0.85, "far_pct": 10, "nab_standard": 35}, True) == 3.0
    assert skab_cv.fold_score({"f1": 0, "far_pct": 55, "nab_standard": 0}, False) == 1.5


def test_cv_grid_has_no_settings_that_cannot_differ() -> None:
    grid = skab_cv.settings(
        {"threshold_margin": (2.0,)}, {"turn_cos": (None, 0.0), "turn_still": (10, 20)}, {}
    )
    assert [s.describe()["episodes"] for s in grid] == [
        {"turn_cos": None, "turn_still": 10},
        {"turn_cos": 0.0, "turn_still": 10},
        {"turn_cos": 0.0, "turn_still": 20},
    ]
    full = [str(s.describe()) for s in skab_cv.settings()]
    # trip: off, 2 ratios x 2 rows on the step curve, and on the inverse curve the three
    # budgets trip_rows * (trip_ratio - 1) those give (1, 2, 4; 2 x 1 and 1 x 2 are one)
    assert len(full) == len(set(full)) == 2 * 2 * 2 * 2 * 2 * 2 * (1 + 2 * 2 + 3)


def test_cv_simulator_folds_are_one_per_fault_type(tmp_path: Path) -> None:
    skab_file(tmp_path / "valve" / "0.csv", 0)
    args = argparse.Namespace(
        dataset=str(tmp_path), train_rows=400, slice_rows=1150, sim_per_type=2, sim_seed=0
    )
    found, folds = skab_cv.experiments(args)
    sim = [f for f in folds if f.group == "simulator"]
    assert len(sim) == 9 and all(len(f.experiments) == 2 for f in sim)
    assert len(found) == 1 + 18 and all(found[i].labelled for f in sim for i in f.experiments)


def test_bench_skab_without_files_is_bad_input(tmp_path: Path, capsys) -> None:
    assert main(["bench", "skab", "--dataset", str(tmp_path), "--json"]) == 2
    assert "no labelled SKAB CSV" in capsys.readouterr().err


def test_bench_train_reports_keys(capsys) -> None:
    argv = ["bench", "train", "--rows", "5000", "--sensors", "6", "--repeat", "1", "--json"]
    assert main([*argv, "--csv-days", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] == 5000 and doc["sensors"] == 6
    assert doc["train_s"] >= 0 and doc["score_rows_per_s"] > 0
    assert doc["rows_per_s"] == doc["score_rows_per_s"]  # the design brief's scoring key
    assert doc["modes"] == 3
    for name in ("user_ms", "sys_ms", "minor_faults"):
        for call in ("score", "alarm"):  # the model's calls and the monitor's
            runs = doc[f"{call}_{name}_runs"]
            assert len(runs) == 1 and runs[0] >= 0 and doc[f"{call}_{name}"] == runs[0]
    assert doc["score_user_ms"] + doc["score_sys_ms"] > 0  # scoring used some CPU
    assert doc["alarm_user_ms"] + doc["alarm_sys_ms"] > 0
    assert doc["alarm_rows_per_s"] > 0 and doc["baseline"]["score_rows_per_s"] > 0
    ratio = doc["alarm_rows_per_s"] / doc["baseline"]["score_rows_per_s"]
    assert doc["ratio"] == pytest.approx(ratio, abs=0.002)
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


def test_bad_skab_files_are_named(tmp_path: Path, capsys) -> None:
    good = skab_frame(1)
    cases = {
        "dates.csv": good.to_csv(sep=";").replace("2020-03-09 10:00:05", "yesterday"),
        "text.csv": good.to_csv(sep=";").replace(";0.0;0.0\n", ";0.0;x\n", 1),
        "short.csv": good.iloc[:300].to_csv(sep=";"),
    }
    expected = {
        "dates.csv": "datetime: expected",
        "text.csv": "'changepoint' is not numeric",
        "short.csv": "300 rows",
    }
    for name, text in cases.items():
        folder = tmp_path / name.removesuffix(".csv")
        folder.mkdir()
        (folder / name).write_text(text)
        assert main(["bench", "skab", "--dataset", str(folder), "--json"]) == 2
        err = capsys.readouterr().err
        assert name in err and expected[name] in err and len(err.strip().splitlines()) == 1


def test_cv_options_that_cannot_work_are_refused(tmp_path: Path, capsys) -> None:
    skab_file(tmp_path / "valve" / "0.csv", 0)
    base = ["bench", "skab", "--dataset", str(tmp_path), "--cv", "--sim-per-type", "0"]
    assert main([*base, "--slice-rows", "300", "--json"]) == 2
    assert "--slice-rows 300: expected more than --train-rows 400" in capsys.readouterr().err
    assert main([*base, "--predictions", str(tmp_path / "p.csv"), "--json"]) == 2
    assert "not with --cv" in capsys.readouterr().err
    assert main([*base, "--json"]) == 2  # one labelled file and nothing else: one fold
    assert "at least two folds" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
