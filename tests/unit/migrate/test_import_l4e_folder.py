"""``plantwatch import l4e`` from local folders: a historical ``<component>/*.csv`` dataset,
inputs with another delimiter and timestamp format, and results in the fleet layout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cloud.cli.imports import default_name
from cloud.cli.main import main


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_historical_layout_and_fleet_results(tmp_path: Path, capsys) -> None:
    history = tmp_path / "old" / "train"
    (history / "fan").mkdir(parents=True)
    (history / "fan" / "part-1.csv").write_text(
        "Timestamp,speed,temp\n2022-01-01 00:00:00,1450,40.5\n2022-01-01 00:01:00,1452,40.6\n"
    )
    (history / "fan" / "part-2.csv").write_text(
        "Timestamp,speed,vibration\n1/1/2022 0:02,1449,0.2\n"
    )
    out = tmp_path / "old" / "out"
    for component in ("fan", "fan-2"):
        folder = out / component / "2022-01-01T00:00:00Z"
        folder.mkdir(parents=True)
        (folder / "results.jsonl").write_text(
            '{"timestamp": "2022-01-01T00:01:00.000000", "prediction": 1}\nnot json\n'
        )
    before = _snapshot(tmp_path / "old")
    data = tmp_path / "data"
    argv = ["import", "l4e", "--input", str(history), "--output", str(out), "--data", str(data)]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert _snapshot(tmp_path / "old") == before
    assert report["Name"] == "train"
    (fan,) = report["Components"]
    assert fan["Sensors"] == ["speed", "temp", "vibration"] and fan["Files"] == 2
    assert (fan["DataStartTime"], fan["DataEndTime"]) == (
        "2022-01-01T00:00:00Z",
        "2022-01-01T00:02:00Z",
    )
    # one window, two assets: one execution with two results objects, two events
    assert (report["Executions"], report["ResultRows"], report["Events"]) == (1, 2, 2)
    # the lines that are not results are set aside with where they came from
    assert report["QuarantinedResultLines"] == 2
    kept = sorted((data / "buckets" / "plantwatch" / "quarantine").rglob("*"))
    records = [json.loads(p.read_text()) for p in kept if p.is_file()]
    assert sorted(r["error"].rsplit("/", 3)[-3] for r in records) == ["fan", "fan-2"]
    assert {r["reason"] for r in records} == {"bad_result_line"}
    assert all(r["error"].endswith("results.jsonl line 2: not a JSON object") for r in records)
    assert main(["executions", "--data", str(data), "--json"]) == 0
    (execution,) = json.loads(capsys.readouterr().out)
    # §6's CustomerResultObject {Bucket, Key} is the first; a fleet lists every one
    objects = execution["CustomerResultObjects"]
    assert execution["CustomerResultObject"] == objects[0]
    # under the import's generation folder (named from the results' content)
    keys = sorted(o["Key"] for o in objects)
    generation = keys[0].split("/")[2]
    assert re.fullmatch(r"[0-9a-f]{12}", generation), keys
    assert keys == [
        f"imported/train/{generation}/fan-2/2022-01-01T00:00:00Z/results.jsonl",
        f"imported/train/{generation}/fan/2022-01-01T00:00:00Z/results.jsonl",
    ]
    assert {o["Bucket"] for o in objects} == {"plantwatch"}
    sql = "SELECT asset, prediction FROM results ORDER BY asset"
    assert main(["query", sql, "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"asset": "fan", "prediction": 1},
        {"asset": "fan-2", "prediction": 1},
    ]
    # the human form names the next commands
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "plantwatch events --scheduler train" in text and "speed, temp, vibration" in text
    # and says that lines were set aside, and where
    assert "result lines quarantined  2" in text
    assert str(data / "buckets" / "plantwatch" / "quarantine" / "bad_result_line") in text


def test_input_naming_options(tmp_path: Path, capsys) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "pump-1652444100.csv").write_text("Timestamp,flow\n2022-05-13T12:11:00,300\n")
    (inputs / "pump_20220513121500.csv").write_text("Timestamp,flow\n2022-05-13T12:12:00,301\n")
    argv = ["import", "l4e", "--input", str(inputs), "--data", str(tmp_path / "d"), "--json"]
    assert main([*argv, "--delimiter", "-", "--timestamp-format", "EPOCH", "--name", "p"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["Components"][0]["Files"] == 1
    assert [s["Key"] for s in report["SkippedKeys"]] == ["pump_20220513121500.csv"]


def test_an_imported_name_does_not_take_over_a_real_scheduler(tmp_path: Path, capsys) -> None:
    from cloud.adapters.local import SqliteStateStore
    from cloud.inference.scheduler import SCHEDULERS_NS

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "pump_20220513121500.csv").write_text("Timestamp,flow\n2022-05-13T12:12:00,301\n")
    state = SqliteStateStore(tmp_path / "d" / "state.db")
    state.put(SCHEDULERS_NS, "live", {"config": {}, "status": "RUNNING"})
    state.close()
    argv = ["import", "l4e", "--input", str(inputs), "--data", str(tmp_path / "d")]
    assert main([*argv, "--name", "live"]) == 1
    assert "scheduler 'live' already exists and was not imported" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("location", "name"),
    [
        ("s3://acme-l4e/pump-line/input/", "pump-line"),
        ("s3://acme-l4e/input/", "acme-l4e"),
        ("/data/old stuff/inference-data", "old-stuff"),
        ("s3://b/", "b"),
    ],
)
def test_default_names(location: str, name: str) -> None:
    assert default_name(location) == name


def test_the_schema_names_each_column_as_the_csv_header_does(tmp_path: Path, capsys) -> None:
    # GIVEN a dataset whose timestamp column is headed 'time' (§1.1: column 1 is the
    # timestamp, whatever its name), its header behind a BOM
    history = tmp_path / "train"
    (history / "fan").mkdir(parents=True)
    (history / "fan" / "a.csv").write_text(
        "\ufefftime,speed\n2022-01-01 00:00:00,1450\n", encoding="utf-8"
    )
    data = tmp_path / "data"
    assert main(["import", "l4e", "--input", str(history), "--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # THEN the schema's Columns[].Name are the CSV's headers (§1.3), 'time' included
    assert report["DatasetSchema"]["Components"] == [
        {
            "ComponentName": "fan",
            "Columns": [
                {"Name": "time", "Type": "DATETIME"},
                {"Name": "speed", "Type": "DOUBLE"},
            ],
        }
    ]


def test_result_lines_an_l4e_reader_cannot_take_are_quarantined_with_their_reason(
    tmp_path: Path, capsys
) -> None:
    # GIVEN an output folder whose results.jsonl holds one good line and lines that are
    # JSON objects but not L4E results (§5: timestamp yyyy-MM-ddTHH:mm:ss.ffffff in UTC
    # without a zone, prediction 0 or 1)
    history = tmp_path / "train"
    (history / "fan").mkdir(parents=True)
    (history / "fan" / "a.csv").write_text("Timestamp,speed\n2022-01-01 00:00:00,1450\n")
    folder = tmp_path / "out" / "2022-01-01T00:00:00Z"
    folder.mkdir(parents=True)
    bad = [
        '{"timestamp": "yesterday", "prediction": 1}',
        '{"timestamp": "2022-01-01T00:03:00+05:00", "prediction": 1}',
        '{"timestamp": "2022-02-30T00:00:00.000000", "prediction": 1}',
        '{"timestamp": "2022-01-01T00:04:00.000000", "prediction": 2}',
        '{"timestamp": "2022-01-01T00:04:00.000000", "prediction": true}',
        '["2022-01-01T00:04:00.000000", 1]',
    ]
    good = '{"timestamp": "2022-01-01T00:02:00.000000", "prediction": 1}'
    (folder / "results.jsonl").write_text("\n".join([good, *bad]) + "\n")
    data = tmp_path / "data"
    argv = ["import", "l4e", "--input", str(history), "--output", str(tmp_path / "out")]
    # WHEN imported, THEN the import succeeds with the good line and sets each other aside
    # with a reason naming what is wrong (an unparsable time crashed the events pass)
    assert main([*argv, "--data", str(data), "--json"]) == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert (report["ResultRows"], report["QuarantinedResultLines"], report["Events"]) == (
        1,
        len(bad),
        1,
    )
    kept = sorted((data / "buckets" / "plantwatch" / "quarantine").rglob("*"))
    reasons = sorted(json.loads(p.read_text())["error"] for p in kept if p.is_file())
    assert sum("timestamp" in r for r in reasons) == 3, reasons
    assert sum("prediction" in r for r in reasons) == 2, reasons
    assert sum(r.endswith("not a JSON object") for r in reasons) == 1, reasons
    assert main(["events", "--scheduler", "train", "--data", str(data), "--json"]) == 0
    [event] = json.loads(capsys.readouterr().out)
    assert event["EventStartTime"] == "2022-01-01T00:02:00.000000Z"


@pytest.mark.parametrize("delimiter", ["\t", "\f", "\r", ""])
def test_every_delimiter_a_scheduler_takes_imports(tmp_path: Path, capsys, delimiter: str) -> None:
    """``ComponentTimestampDelimiter`` ``^(\\-|\\_|\\s)?$``: the import takes every value
    ``schedulers create`` takes (a tab is ``\\s``), so any old scheduler's inputs carry over."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / f"pump{delimiter}20220513121500.csv").write_text(
        "Timestamp,flow\n2022-05-13T12:11:00,300\n"
    )
    argv = ["import", "l4e", "--input", str(inputs), "--data", str(tmp_path / "d"), "--json"]
    assert main([*argv, "--delimiter", delimiter, "--name", "p"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [c["Files"] for c in report["Components"]] == [1]


def test_a_components_csvs_in_subfolders_are_its_files(tmp_path: Path, capsys) -> None:
    """``{prefix}/{component_name}/*`` (IngestionS3InputConfiguration.KeyPattern) takes
    every key under the component's folder, as ``model train --dataset`` reads it; a
    dataset kept by year or by sensor in subfolders carries over whole."""
    history = tmp_path / "train"
    for part, row in (
        ("2022/jan.csv", "2022-01-01 00:00:00,1"),
        ("2023/jan.CSV", "2023-01-01 00:00:00,2"),
    ):
        path = history / "fan" / part
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Timestamp,speed\n{row}\n")
    argv = ["import", "l4e", "--input", str(history), "--data", str(tmp_path / "d"), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    (fan,) = report["Components"]
    assert (fan["ComponentName"], fan["Files"], fan["Rows"]) == ("fan", 2, 2)
    assert report["SkippedKeys"] == []


@pytest.mark.parametrize(
    ("starts", "frequency"),
    [
        (["00:00", "01:00", "02:00"], "PT1H"),
        (["00:00", "02:00", "05:00"], "PT1H"),  # windows that failed left no folder
        (["00:00", "00:30", "02:00"], "PT30M"),
        (["00:00", "00:15", "01:00"], "PT15M"),
        (["00:00", "00:15", "00:25"], "PT5M"),  # no PT10M window starts at 00:15
        (["00:00", "00:20", "00:50"], "PT10M"),
        (["00:15", "00:45"], "PT15M"),  # a PT30M window never starts at 00:15
        (["00:00", "00:07"], "PT5M"),  # no allowed F fits: the shortest
        (["00:05", "00:10"], "PT5M"),
        (["00:00"], "PT5M"),  # one window shows no spacing: AWS samples' PT5M
    ],
)
def test_the_upload_frequency_is_the_longest_every_window_start_fits(
    tmp_path: Path, capsys, starts: list[str], frequency: str
) -> None:
    """§3: runs at each multiple of F past the hour, so every DataStartTime is a multiple
    of F and so is every gap between two result folders, whichever windows are missing."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "pump_20220101000500.csv").write_text("Timestamp,flow\n2022-01-01T00:01:00,1\n")
    for start in starts:
        folder = out / f"2022-01-01T{start}:00Z"
        folder.mkdir(parents=True)
        (folder / "results.jsonl").write_text(
            f'{{"timestamp": "2022-01-01T{start}:00.000000", "prediction": 0}}\n'
        )
    argv = ["import", "l4e", "--input", str(inputs), "--output", str(out), "--json"]
    assert main([*argv, "--data", str(tmp_path / "d")]) == 0
    assert json.loads(capsys.readouterr().out)["UploadFrequency"] == frequency


@pytest.mark.parametrize("delimiter", ["_", " ", ".", "-"])
def test_a_historical_dataset_flat_under_its_prefix_imports_by_its_key_pattern(
    tmp_path: Path, capsys, delimiter: str
) -> None:
    """§1.1: L4E also ingests ``{prefix}/{component_name}[DELIMITER]*`` (space, dot,
    underscore or hyphen); ``--flat-delimiter D`` takes such a bucket as it is, the
    component being the name up to the first D, as ``model train --flat-delimiter`` reads
    it, and its files count as a historical dataset's (§1.4)."""
    history = tmp_path / "train"
    history.mkdir()
    tail = "data.csv" if delimiter != "." else "csv"
    for component, row in (("pump-01", "2022-01-01 00:00:00,1"), ("fan", "2022-01-01 00:01:00,2")):
        if delimiter == "-" and component == "pump-01":
            component = "pump"
        (history / f"{component}{delimiter}{tail}").write_text(f"Timestamp,speed\n{row}\n")
    argv = ["import", "l4e", "--input", str(history), "--data", str(tmp_path / "d"), "--json"]
    assert main([*argv, "--flat-delimiter", delimiter]) == 0
    report = json.loads(capsys.readouterr().out)
    pump = "pump" if delimiter == "-" else "pump-01"
    assert [(c["ComponentName"], c["Files"], c["Rows"]) for c in report["Components"]] == [
        ("fan", 1, 1),
        (pump, 1, 1),
    ]
    assert report["SkippedKeys"] == []


def test_a_flat_historical_dataset_without_its_delimiter_names_the_option(
    tmp_path: Path, capsys
) -> None:
    history = tmp_path / "train"
    history.mkdir()
    (history / "pump-2022.csv").write_text("Timestamp,speed\n2022-01-01 00:00:00,1\n")
    argv = ["import", "l4e", "--input", str(history), "--data", str(tmp_path / "d")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--flat-delimiter" in err


def test_flat_historical_files_count_toward_the_dataset_file_limit(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud.inference import dataset

    monkeypatch.setattr(dataset, "MAX_DATASET_FILES", 2)
    history = tmp_path / "train"
    history.mkdir()
    for n in range(3):
        (history / f"pump-{n}.csv").write_text(f"Timestamp,speed\n2022-01-01 00:0{n}:00,1\n")
    argv = ["import", "l4e", "--input", str(history), "--data", str(tmp_path / "d")]
    assert main([*argv, "--flat-delimiter", "-"]) == 2
    assert "3 CSV files; an L4E dataset holds at most 2" in capsys.readouterr().err


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_results_saved_with_a_byte_order_mark_import_every_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], newline: str
) -> None:
    """A results.jsonl saved again by a Windows editor starts with a UTF-8 byte order mark
    (and may end its lines with CRLF): its first line is still an L4E result (§5), not a
    line to set aside, and its anomaly still makes an event."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "pump_20260101000500.csv").write_text(
        "Timestamp,flow\n2026-01-01T00:01:00,1\n"
    )
    folder = tmp_path / "out" / "2026-01-01T00:00:00Z"
    folder.mkdir(parents=True)
    lines = [
        '{"timestamp": "2026-01-01T00:01:00.000000", "prediction": 1, "prediction_reason": '
        '"ANOMALY_DETECTED", "anomaly_score": 0.9, "diagnostics": [{"name": "pump\\\\flow", '
        '"value": 1.0}]}',
        '{"timestamp": "2026-01-01T00:02:00.000000", "prediction": 0}',
    ]
    (folder / "results.jsonl").write_bytes(
        b"\xef\xbb\xbf" + "".join(line + newline for line in lines).encode()
    )
    argv = ["import", "l4e", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    assert main([*argv, "--data", str(tmp_path / "d"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["ResultRows"], report["QuarantinedResultLines"]) == (2, 0)
    assert (report["AnomalousExecutions"], report["Events"]) == (1, 1)
