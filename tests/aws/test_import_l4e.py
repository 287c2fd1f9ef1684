"""``plantwatch import l4e`` against moto buckets laid out as L4E left them: ``input/`` with
the default ``_`` naming, ``output/<DataStartTime>/results.jsonl``, label CSVs. The buckets
are only read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws

from cloud.adapters.local import SqliteStateStore
from cloud.cli.main import main
from cloud.migrate.l4e import DATASETS_NS, LABELS_NS

DAY = datetime(2022, 5, 13, tzinfo=UTC)
SENSORS = {"pump": ("motor_current", "flow"), "gearbox": ("oil_temp", "vibration")}
WINDOWS = 12  # results for the first hour


def _input_files(s3: object) -> None:
    rng = np.random.default_rng(5)
    minutes = 2 * 60
    load = 60 + rng.normal(0, 3, minutes)
    columns = {
        "pump": (0.2 * load + rng.normal(0, 0.2, minutes), 5 * load + rng.normal(0, 2, minutes)),
        "gearbox": (
            40 + 0.1 * load + rng.normal(0, 0.3, minutes),
            0.01 * load + rng.normal(0, 0.01, minutes),
        ),
    }
    for component, (a, b) in columns.items():
        for w in range(minutes // 5):
            end = DAY + timedelta(minutes=5 * (w + 1))
            lines = [f"Timestamp,{','.join(SENSORS[component])}"]
            for m in range(5 * w, 5 * w + 5):
                at = DAY + timedelta(minutes=m + 1)
                lines.append(f"{at:%Y-%m-%dT%H:%M:%S.%f},{a[m]:.4f},{b[m]:.4f}")
            key = f"pump-line/input/{component}_{end:%Y%m%d%H%M%S}.csv"
            s3.put_object(Bucket="l4e-input", Key=key, Body="\n".join(lines) + "\n")
    s3.put_object(Bucket="l4e-input", Key="pump-line/input/README.txt", Body=b"notes")
    s3.put_object(
        Bucket="l4e-input",
        Key="pump-line/input/pump_20220513020500.csv",
        Body=b"\x00\x01 not a csv",
    )
    s3.put_object(
        Bucket="l4e-input",
        Key="pump-line/labels/pump-line.csv",
        Body=b"2022-05-13T00:40:00.000000,2022-05-13T00:50:00.000000\n"
        b"2022-05-13T01:30:00.000000,2022-05-13T01:35:00.000000\n",
    )


def _results(s3: object) -> None:
    """12 executions; rows 4-5 of window 5 and 0-2 of window 6 are anomalous: one event."""
    for w in range(WINDOWS):
        start = DAY + timedelta(minutes=5 * w)
        lines = []
        for m in range(5):
            at = start + timedelta(minutes=m + 1)
            stamp = f"{at:%Y-%m-%dT%H:%M:%S.%f}"
            flagged = (w == 5 and m >= 3) or (w == 6 and m <= 2)
            if w == 1 and m == 0:
                lines.append(
                    {"timestamp": stamp, "prediction": 0, "prediction_reason": "MACHINE_OFF"}
                )
                continue
            if w == 2 and m == 0:  # a model from before 2022-03-28: no score, no reason
                lines.append({"timestamp": stamp, "prediction": 0, "diagnostics": []})
                continue
            lines.append(
                {
                    "timestamp": stamp,
                    "prediction": int(flagged),
                    "prediction_reason": "ANOMALY_DETECTED" if flagged else "NO_ANOMALY_DETECTED",
                    "anomaly_score": 0.8 if flagged else 0.1,
                    "diagnostics": [
                        {"name": "pump\\motor_current", "value": 0.7 if flagged else 0.3},
                        {"name": "gearbox\\oil_temp", "value": 0.3 if flagged else 0.7},
                    ],
                }
            )
        body = "".join(json.dumps(line) + "\n" for line in lines)
        key = f"pump-line/output/{start:%Y-%m-%dT%H:%M:%SZ}/results.jsonl"
        s3.put_object(Bucket="l4e-output", Key=key, Body=body)


def _snapshot(s3: object) -> dict[str, str]:
    found = {}
    for bucket in ("l4e-input", "l4e-output"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", ()):
                found[f"{bucket}/{item['Key']}"] = item["ETag"]
    return found


@pytest.fixture(scope="module")
def s3() -> Iterator[object]:
    """The buckets, filled once for the module; a test that changes them puts them back."""
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with patch.context(), mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in ("l4e-input", "l4e-output"):
            client.create_bucket(Bucket=bucket)
        _input_files(client)
        _results(client)
        yield client


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_import_from_l4e_buckets(s3: object, tmp_path: Path, capsys) -> None:
    before = _snapshot(s3)
    data = tmp_path / "data"
    # WHEN the L4E buckets are imported with their labels, training a model
    report = _run(
        capsys,
        [
            "import", "l4e",
            "--input", "s3://l4e-input/pump-line/input/",
            "--output", "s3://l4e-output/pump-line/output",
            "--labels", "s3://l4e-input/pump-line/labels/",
            "--train", "pump-line-model",
            "--data", str(data), "--json",
        ],
    )  # fmt: skip
    # THEN nothing in the source buckets changed
    assert _snapshot(s3) == before
    # the components and their sensors are registered as the dataset's schema
    assert report["Name"] == "pump-line"
    components = {c["ComponentName"]: c for c in report["Components"]}
    assert {k: tuple(v["Sensors"]) for k, v in components.items()} == SENSORS
    assert components["pump"]["Files"] == 24 and components["pump"]["Rows"] == 120
    assert components["gearbox"]["DataStartTime"] == "2022-05-13T00:01:00Z"
    assert [d["Key"] for d in report["DiscardedFiles"]] == [
        "pump-line/input/pump_20220513020500.csv"
    ]
    assert [s["Key"] for s in report["SkippedKeys"]] == ["pump-line/input/README.txt"]
    state = SqliteStateStore(data / "state.db", readonly=True)
    schema = state.get(DATASETS_NS, "pump-line")["DatasetSchema"]["Components"]
    assert schema[1] == {
        "ComponentName": "pump",
        "Columns": [
            {"Name": "Timestamp", "Type": "DATETIME"},
            {"Name": "motor_current", "Type": "DOUBLE"},
            {"Name": "flow", "Type": "DOUBLE"},
        ],
    }
    assert len(state.get(LABELS_NS, "pump-line")["labels"]) == 2
    state.close()
    # old results are executions and events of a stopped scheduler
    assert report["UploadFrequency"] == "PT5M"
    assert (report["Executions"], report["AnomalousExecutions"], report["Events"]) == (12, 2, 1)
    executions = _run(
        capsys, ["executions", "--scheduler", "pump-line", "--data", str(data), "--json"]
    )
    assert len(executions) == 12 and {e["Status"] for e in executions} == {"SUCCESS"}
    assert executions[-1]["DataStartTime"] == "2022-05-13T00:00:00Z"
    assert executions[-1]["DataEndTime"] == "2022-05-13T00:05:00Z"
    events = _run(capsys, ["events", "--scheduler", "pump-line", "--data", str(data), "--json"])
    assert [(e["EventStartTime"], e["EventEndTime"]) for e in events] == [
        ("2022-05-13T00:29:00.000000Z", "2022-05-13T00:33:00.000000Z")
    ]
    assert json.loads(events[0]["Diagnostics"])["diagnostics"][0] == {
        "name": "pump\\motor_current",
        "value": 0.7,
    }
    described = _run(capsys, ["schedulers", "describe", "pump-line", "--data", str(data), "--json"])
    assert described["Status"] == "STOPPED" and described["ModelName"] == "pump-line-model"
    # the results are queryable beside new ones
    rows = _run(
        capsys,
        [
            "query",
            "SELECT count(*) AS n, sum(prediction) AS anomalous, count(anomaly_score) AS scored "
            "FROM results WHERE source = 'imported/pump-line'",
            "--data", str(data), "--json",
        ],
    )  # fmt: skip
    assert rows == [{"n": 60, "anomalous": 5, "scored": 58}]
    # and a model was trained from the history with the labels kept out
    model = report["Model"]
    assert model["ModelName"] == "pump-line-model" and model["ModelVersion"] == 1
    assert set(model["Sensors"]) == {f"{c}\\{s}" for c, names in SENSORS.items() for s in names}
    assert model["ModelQuality"] in ("QUALITY_THRESHOLD_MET", "POOR_QUALITY_DETECTED")
    listed = _run(capsys, ["model", "list", "--data", str(data), "--json"])
    assert [m["ModelName"] for m in listed] == ["pump-line-model"]


def test_importing_again_replaces_what_the_first_import_registered(
    s3: object, tmp_path: Path, capsys
) -> None:
    argv = [
        "import", "l4e", "--input", "s3://l4e-input/pump-line/input/",
        "--output", "s3://l4e-output/pump-line/output/", "--name", "line-1",
        "--data", str(tmp_path), "--json",
    ]  # fmt: skip
    first = _run(capsys, argv)
    key = "pump-line/output/2022-05-13T00:55:00Z/results.jsonl"
    body = s3.get_object(Bucket="l4e-output", Key=key)["Body"].read()
    s3.delete_object(Bucket="l4e-output", Key=key)
    try:
        second = _run(capsys, argv)
    finally:
        s3.put_object(Bucket="l4e-output", Key=key, Body=body)
    assert (first["Executions"], second["Executions"]) == (12, 11)
    executions = _run(capsys, ["executions", "--data", str(tmp_path), "--json"])
    assert len(executions) == 11
    copies = list((tmp_path / "buckets" / "plantwatch" / "imported" / "line-1").rglob("*.jsonl"))
    assert len(copies) == 11


def test_nothing_is_written_to_the_source(s3: object) -> None:
    from cloud.adapters.aws import S3ObjectStore
    from cloud.migrate.source import ReadOnlyStore
    from edge.errors import StorageError

    store = ReadOnlyStore(S3ObjectStore("l4e-input", client=s3), "s3://l4e-input/")
    assert b"Timestamp" in store.get("pump-line/input/pump_20220513000500.csv")
    with pytest.raises(StorageError, match="read-only"):
        store.put("pump-line/input/x.csv", b"")
    with pytest.raises(StorageError, match="read-only"):
        store.delete("pump-line/input/pump_20220513000500.csv")


def test_bad_sources_are_named(s3: object, tmp_path: Path, capsys) -> None:
    base = ["import", "l4e", "--data", str(tmp_path / "d")]
    assert main([*base, "--input", "s3://l4e-output/pump-line/output/"]) == 2
    assert (
        "--input s3://l4e-output/pump-line/output/: no L4E input files" in capsys.readouterr().err
    )
    argv = [*base, "--input", "s3://l4e-input/pump-line/input/", "--output", "s3://l4e-input/x/"]
    assert main(argv) == 2
    assert "--output s3://l4e-input/x/: no results" in capsys.readouterr().err
    assert main([*base, "--input", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
