"""``plantwatch query`` and ``export`` over a data directory laid out as ``up`` leaves it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from archive_cells import input_cells

from cloud.adapters.local import FsObjectStore, OutboxNotifier, SqliteStateStore
from cloud.archive import ArchiveWriter
from cloud.archive.query import Catalog, Sources, results_objects
from cloud.batcher import Batcher, BatcherConfig
from cloud.cli.main import main
from cloud.inference.scheduler import EXECUTIONS_NS
from cloud.ports import Notification
from cloud.runtime.layout import DataLayout
from edge import wire
from edge.clock import ManualClock

T0 = 1_700_006_400  # 2023-11-15T00:00:00Z


def _result(ts: str, prediction: int, top: str) -> str:
    other = "pump-1\\flow" if top != "pump-1\\flow" else "pump-1\\temp"
    return json.dumps(
        {
            "timestamp": ts,
            "prediction": prediction,
            "prediction_reason": "ANOMALY_DETECTED" if prediction else "NO_ANOMALY_DETECTED",
            "anomaly_score": 0.9 if prediction else 0.1,
            "diagnostics": [{"name": top, "value": 0.7}, {"name": other, "value": 0.3}],
        }
    )


IMPORTED_KEY = "imported/old-l4e/0123456789ab/old-l4e/2022-05-13T12:10:00Z/results.jsonl"
"""An imported results object, under its import's generation folder (cloud.migrate.l4e)."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("query") / "data"
    layout = DataLayout.at(root)
    clock = ManualClock(T0 + 3600)
    batcher = Batcher(
        FsObjectStore(layout.bucket, fsync=False),
        BatcherConfig(grace_s=0),
        clock,
        str(layout.spool_db),
        archive=True,
    )
    writer = ArchiveWriter(layout.archive, batcher.spool, clock).open()
    seq = 0
    for site, asset in (("s1", "pump-1"), ("s1", "pump-2"), ("s2", "pump-1")):
        for i in range(40):
            seq += 1
            values = {"flow": 100 + i, "temp": 40 + i / 8}
            if i % 7 == 0:
                values["temp"] = None
            sample = wire.Sample((T0 - 1200 + i * 60) * 1000, values)
            m = wire.Telemetry(site, asset, "gw", seq, (sample,))
            batcher.accept(m.topic, wire.encode(m))
    batcher.flush_all()
    writer.close()
    batcher.close()
    store = FsObjectStore(layout.bucket, fsync=False)
    store.put(
        "output/pump-1/2023-11-14T23:40:00Z/results.jsonl",
        (
            _result("2023-11-14T23:41:00.000000", 0, "pump-1\\flow")
            + "\n"
            + _result("2023-11-14T23:42:00.000000", 1, "pump-1\\temp")
            + "\n"
        ).encode(),
    )
    store.put(
        "output/s2/pump-1/2023-11-14T23:40:00Z/results.jsonl",
        (_result("2023-11-14T23:41:00.000000", 1, "pump-1\\flow") + "\n").encode(),
    )
    store.put(
        IMPORTED_KEY,
        b'{"timestamp": "2022-05-13T12:11:00.000000", "prediction": 0, '
        b'"prediction_reason": "MACHINE_OFF"}\n',
    )
    store.put(  # what a killed re-import leaves: its objects, never registered
        "imported/old-l4e/fedcba987654/old-l4e/2022-05-13T12:10:00Z/results.jsonl",
        b'{"timestamp": "2022-05-13T12:11:00.000000", "prediction": 1}\n',
    )
    notifier = OutboxNotifier(layout.alerts, clock=clock)
    notifier.send(
        Notification(
            "email", "ops@example.com", "ALARM pump-1", "body", {"asset": "pump-1", "kind": "alarm"}
        )
    )
    notifier.send(Notification("sms", "+15555550100", "", "ALARM", {"asset": "s2:pump-1"}))
    state = SqliteStateStore(layout.state_db)
    state.put(
        EXECUTIONS_NS,
        "fleet/2023-11-14T23:40:00Z",
        {
            "scheduler": "fleet",
            "data_start": "2023-11-14T23:40:00Z",
            "data_end": "2023-11-14T23:45:00Z",
            "scheduled_start": "2023-11-14T23:46:00Z",
            "status": "SUCCESS",
            "failed_reason": None,
            "result_key": "output/pump-1/2023-11-14T23:40:00Z/results.jsonl",
            "result_keys": ["output/pump-1/2023-11-14T23:40:00Z/results.jsonl"],
            "anomalous": True,
            "model_name": "m",
            "rows": 2,
            "model_version": 3,
        },
    )
    state.put(
        EXECUTIONS_NS,
        "old-l4e/2022-05-13T12:10:00Z",
        {
            "scheduler": "old-l4e",
            "data_start": "2022-05-13T12:10:00Z",
            "data_end": "2022-05-13T12:15:00Z",
            "scheduled_start": "2022-05-13T12:15:00Z",
            "status": "SUCCESS",
            "failed_reason": None,
            "result_key": IMPORTED_KEY,
            "result_keys": [IMPORTED_KEY],
            "anomalous": False,
            "model_name": "old-l4e",
            "rows": 1,
        },
    )
    state.close()
    return root


def _query(capsys: pytest.CaptureFixture[str], data: Path, sql: str, *extra: str) -> str:
    assert main(["query", sql, "--data", str(data), *extra]) == 0
    return capsys.readouterr().out


def test_readings_view_is_the_input_files_long_form(data: Path) -> None:
    layout = DataLayout(data)
    with Catalog(Sources(archive=layout.archive)) as catalog:
        answer = catalog.query(
            "SELECT site, asset, epoch_ms(ts), sensor, value FROM readings ORDER BY ALL"
        )
    cells = {(s, a, t, n): v for s, a, t, n, v in answer.rows}
    assert cells == input_cells(layout.bucket)
    assert len(cells) == 3 * (40 + 34)


def test_query_json_csv_and_table(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    sql = (
        "SELECT site, asset, count(*) AS n, max(value) AS top FROM readings "
        "WHERE sensor = 'flow' GROUP BY ALL ORDER BY site, asset"
    )
    rows = json.loads(_query(capsys, data, sql, "--json"))
    assert rows == [
        {"site": "s1", "asset": "pump-1", "n": 40, "top": 139.0},
        {"site": "s1", "asset": "pump-2", "n": 40, "top": 139.0},
        {"site": "s2", "asset": "pump-1", "n": 40, "top": 139.0},
    ]
    text = _query(capsys, data, sql, "--csv")
    assert list(csv.reader(io.StringIO(text)))[:2] == [
        ["site", "asset", "n", "top"],
        ["s1", "pump-1", "40", "139.0"],
    ]
    table = _query(capsys, data, sql).splitlines()
    assert table[0].split() == ["site", "asset", "n", "top"]
    assert table[1].split() == ["s1", "pump-1", "40", "139"]


def test_time_filters_use_utc_timestamps(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    sql = (
        "SELECT min(ts) AS first, count(*) AS n FROM readings WHERE asset = 'pump-2' "
        "AND sensor = 'flow' AND ts >= TIMESTAMP '2023-11-15 00:00:00' AND date = '2023-11-15'"
    )
    assert json.loads(_query(capsys, data, sql, "--json")) == [
        {"first": "2023-11-15T00:00:00", "n": 20}
    ]


def test_results_alerts_and_executions_views(
    capsys: pytest.CaptureFixture[str], data: Path
) -> None:
    results = json.loads(
        _query(
            capsys,
            data,
            "SELECT site, asset, timestamp, prediction, anomaly_score, top_sensor, source "
            "FROM results ORDER BY source, site, timestamp",
            "--json",
        )
    )
    assert results == [
        {
            "site": "s1",
            "asset": "old-l4e",
            "timestamp": "2022-05-13T12:11:00",
            "prediction": 0,
            "anomaly_score": None,
            "top_sensor": None,
            "source": "imported/old-l4e",
        },
        {
            "site": "s1",
            "asset": "pump-1",
            "timestamp": "2023-11-14T23:41:00",
            "prediction": 0,
            "anomaly_score": 0.1,
            "top_sensor": "pump-1\\flow",
            "source": "output",
        },
        {
            "site": "s1",
            "asset": "pump-1",
            "timestamp": "2023-11-14T23:42:00",
            "prediction": 1,
            "anomaly_score": 0.9,
            "top_sensor": "pump-1\\temp",
            "source": "output",
        },
        {
            "site": "s2",
            "asset": "pump-1",
            "timestamp": "2023-11-14T23:41:00",
            "prediction": 1,
            "anomaly_score": 0.9,
            "top_sensor": "pump-1\\flow",
            "source": "output",
        },
    ]
    alerts = json.loads(
        _query(capsys, data, "SELECT sent_at, channel, site, asset, kind FROM alerts", "--json")
    )
    assert alerts == [
        {"sent_at": "2023-11-15T01:00:00", "channel": "email", "site": "s1", "asset": "pump-1", "kind": "alarm"},
        {"sent_at": "2023-11-15T01:00:00", "channel": "sms", "site": "s2", "asset": "pump-1", "kind": None},
    ]  # fmt: skip
    executions = json.loads(
        _query(capsys, data, "SELECT scheduler, data_start, status, rows FROM executions", "--json")
    )
    assert sorted(executions, key=lambda e: e["scheduler"]) == [
        {"scheduler": "fleet", "data_start": "2023-11-14T23:40:00", "status": "SUCCESS", "rows": 2},
        {"scheduler": "old-l4e", "data_start": "2022-05-13T12:10:00", "status": "SUCCESS", "rows": 1},
    ]  # fmt: skip
    # ModelVersion (l4e-contracts §6); NULL for an imported execution, which names none
    versions = json.loads(
        _query(capsys, data, "SELECT scheduler, model_version FROM executions", "--json")
    )
    assert sorted(versions, key=lambda e: e["scheduler"]) == [
        {"scheduler": "fleet", "model_version": 3},
        {"scheduler": "old-l4e", "model_version": None},
    ]


def test_a_join_of_readings_and_results(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    sql = (
        "SELECT r.value FROM results AS x JOIN readings AS r ON r.site = x.site AND "
        "r.asset = x.asset AND r.ts = x.timestamp AND r.sensor = 'flow' "
        "WHERE x.prediction = 1 ORDER BY x.site"
    )
    assert json.loads(_query(capsys, data, sql, "--json")) == [{"value": 102.0}, {"value": 101.0}]


def test_bad_sql_is_bad_input_on_one_line(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    assert main(["query", "SELEC nonsense", "--data", str(data)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("plantwatch: error: query: ")
    assert main(["query", "SELECT nope FROM readings", "--data", str(data)]) == 2
    assert "nope" in capsys.readouterr().err


def test_an_empty_data_directory_has_empty_views(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for view in ("readings", "results", "alerts", "executions"):
        out = _query(capsys, tmp_path, f"SELECT count(*) AS n FROM {view}", "--json")
        assert json.loads(out) == [{"n": 0}]
    assert _query(capsys, tmp_path, "SELECT * FROM readings") == "no rows\n"
    assert list(tmp_path.iterdir()) == []


def test_results_keys_name_their_site_and_asset(tmp_path: Path) -> None:
    for key in (
        "output/2023-11-14T23:40:00Z/results.jsonl",
        "output/pump-1/2023-11-14T23:40:00Z/results.jsonl",
        "output/s2/pump-1/2023-11-14T23:40:00Z/results.jsonl",
        "stream/pump-3/2023-11-14T23:40:00Z/results.jsonl",
        "output/not/a/results/layout/results.jsonl",
        "output/pump-1/not-a-time/results.jsonl",
        "imported/old/0123456789ab/pump-4/2023-11-14T23:40:00Z/results.jsonl",
        "imported/old/pump-5/2023-11-14T23:40:00Z/results.jsonl",
    ):
        FsObjectStore(tmp_path).put(key, b"")
    found = [(o.source, o.site, o.asset) for o in results_objects(tmp_path)]
    assert found == [
        ("imported/old", "s1", "pump-4"),
        ("imported/old", "s1", "pump-5"),
        ("output", "s1", None),
        ("output", "s1", "pump-1"),
        ("output", "s2", "pump-1"),
        ("stream", "s1", "pump-3"),
    ]


def test_export_wide_csv_matches_the_input_files(
    capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pump-2.csv"
    argv = ["export", "--asset", "pump-2", "--from", "2023-11-14T23:40", "--to", "2023-11-15"]
    assert main([*argv, "--out", str(out), "--data", str(data), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 20 and summary["sensors"] == ["flow", "temp"]
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["Timestamp", "flow", "temp"]
    assert rows[1] == ["2023-11-14T23:40:00.000000", "100.0", ""]  # temp was null
    cells = input_cells(DataLayout(data).bucket)
    for stamp, flow, temp in rows[1:]:
        from datetime import UTC, datetime

        ms = int(datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp() * 1000)
        assert float(flow) == cells[("s1", "pump-2", ms, "flow")]
        assert (float(temp) if temp else None) == cells.get(("s1", "pump-2", ms, "temp"))


def test_export_long_parquet_and_the_site_question(
    capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p1.parquet"
    base = ["export", "--asset", "pump-1", "--from", "2023-11-14", "--to", "2023-11-16"]
    assert main([*base, "--format", "parquet", "--out", str(out), "--data", str(data)]) == 2
    assert "found in sites s1, s2; pass --site" in capsys.readouterr().err
    argv = [*base, "--site", "s2", "--shape", "long", "--format", "parquet", "--out", str(out)]
    assert main([*argv, "--data", str(data)]) == 0
    table = pq.read_table(out)
    assert table.column_names == ["ts", "site", "asset", "sensor", "value"]
    assert table.num_rows == 74 and set(table.column("site").to_pylist()) == {"s2"}


def test_export_names_what_is_missing(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    base = ["export", "--from", "2020-01-01", "--to", "2020-01-02", "--data", str(data)]
    assert main([*base, "--asset", "pump-9"]) == 2
    assert "--asset pump-9: not in the archive" in capsys.readouterr().err
    assert main([*base, "--asset", "pump-2"]) == 2
    assert "no readings from 2020-01-01 to 2020-01-02" in capsys.readouterr().err
    assert main([*base[:2], "2020-01-02", "--to", "2020-01-01", *base[5:], "--asset", "x"]) == 2
    assert "must be after --from" in capsys.readouterr().err


def test_the_sql_in_docs_query_runs_here(data: Path) -> None:
    """Every example of docs/query.md (but the Athena view's definition) runs on DuckDB."""
    import re

    text = (Path(__file__).resolve().parents[3] / "docs" / "query.md").read_text()
    blocks = [b for b in re.findall(r"```sql\n(.*?)```", text, re.S) if "readings_raw" not in b]
    assert len(blocks) >= 3
    layout = DataLayout(data)
    with Catalog(Sources(archive=layout.archive, buckets=layout.bucket.parent)) as catalog:
        for sql in blocks:
            catalog.query(sql)
