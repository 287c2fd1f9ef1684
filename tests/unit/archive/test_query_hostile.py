"""``plantwatch query``/``export`` against hostile SQL and a damaged archive.

docs/query.md promises the command only reads and creates nothing: SQL that would write a
file, read one outside the data directory, attach a database or load an extension is
refused on one line (exit 2); a huge answer is bounded and a long query stops on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ctrl_c import cli_argv
from test_archive_writer import T0, Rig, _message

from cloud import wire_decoder
from cloud.archive.query import Catalog, Sources
from cloud.cli.main import main
from cloud.runtime.layout import DataLayout
from edge import wire
from edge.errors import UserError

REPO = Path(__file__).resolve().parents[3]


def make_data(root: Path, assets: tuple[str, ...] = ("pump-1",)) -> Path:
    """A data directory whose archive holds 40 minutes of two sensors per asset, across
    midnight (two ``date=`` partitions each)."""
    rig = Rig(root)
    seq = 0
    for asset in assets:
        for i in range(40):
            seq += 1
            rig.send(_message(seq, T0 - 1200 + i * 60, {"flow": 100 + i, "temp": 40 + i}, asset))
    rig.batcher.flush_all()
    rig.writer.close()
    rig.batcher.close()
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("hostile-query") / "data")


def _fails(capsys: pytest.CaptureFixture[str], data: Path, sql: str) -> str:
    assert main(["query", sql, "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_copy_to_writes_no_file(
    capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "out.csv"
    part = next(DataLayout(data).archive.rglob("part-*.parquet"))
    before = part.read_bytes()
    for target in (outside, part, data / "x.csv"):
        err = _fails(capsys, data, f"COPY (SELECT 1) TO '{target}'")
        assert "only reads" in err
    assert not outside.exists() and not (data / "x.csv").exists()
    assert part.read_bytes() == before


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_parquet('/nonexistent/*.parquet')",
    ],
)
def test_files_outside_the_views_are_not_readable(
    capsys: pytest.CaptureFixture[str], data: Path, sql: str
) -> None:
    err = _fails(capsys, data, sql)
    assert "root:" not in err


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH '{tmp}/x.db' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; COPY (SELECT 1) TO '{tmp}/y.csv'",
    ],
)
def test_only_one_reading_statement_runs(
    capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path, sql: str
) -> None:
    _fails(capsys, data, sql.format(tmp=tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "sql",
    [
        "FROM readings LIMIT 1",
        "WITH r AS (SELECT * FROM readings) SELECT count(*) FROM r",
        "DESCRIBE readings",
        "SUMMARIZE readings",
        "EXPLAIN SELECT count(*) FROM readings",
        "SELECT count(*) FROM read_parquet(getvariable('plantwatch_archive_files'))",
    ],
)
def test_reading_statements_still_run(
    capsys: pytest.CaptureFixture[str], data: Path, sql: str
) -> None:
    assert main(["query", sql, "--data", str(data)]) == 0, capsys.readouterr().err


def test_settings_cannot_be_changed_by_a_query(data: Path) -> None:
    with Catalog(Sources(archive=DataLayout(data).archive)) as catalog:
        limit = catalog.query("SELECT current_setting('memory_limit')").rows[0][0]
        assert catalog.query("SELECT current_setting('enable_external_access')").rows == [(False,)]
        with pytest.raises(UserError):
            catalog.query("SET memory_limit = '100GB'")
        assert catalog.query("SELECT current_setting('memory_limit')").rows[0][0] == limit


def test_a_huge_answer_is_refused_not_loaded(
    capsys: pytest.CaptureFixture[str], data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud.archive import query

    monkeypatch.setattr(query, "MAX_ROWS", 100)
    err = _fails(capsys, data, "SELECT * FROM range(1000000000)")
    assert "more than 100 rows" in err and "--csv" in err
    # --csv streams: no bound
    assert main(["query", "SELECT * FROM range(1000)", "--csv", "--data", str(data)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1001


def test_ctrl_c_stops_a_long_query(data: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        cli_argv(
            "query", "SELECT count(*) FROM range(100000000000) t(x), readings", "--data", str(data)
        ),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)  # imports, then the query is starting or running: either must stop
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.monotonic() - sent < 10
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err, err


EXPORT = ["export", "--asset", "pump-1", "--from", "2023-11-14", "--to", "2023-11-16"]


@pytest.mark.parametrize("target", ["a-directory", "missing/out.csv"])
def test_an_unwritable_export_target_fails_before_any_work(
    capsys: pytest.CaptureFixture[str],
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
) -> None:
    from cloud.cli import query as query_cli

    (tmp_path / "a-directory").mkdir()
    opened = []
    monkeypatch.setattr(query_cli, "open_catalog", lambda *a: opened.append(a))
    assert main([*EXPORT, "--out", str(tmp_path / target), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and target.split("/")[0] in err, err
    assert opened == []


@pytest.mark.parametrize("form", ["csv", "parquet"])
def test_a_failed_export_leaves_no_half_file(
    capsys: pytest.CaptureFixture[str],
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    form: str,
) -> None:
    import pyarrow.parquet as pq

    from cloud.cli import export

    out = tmp_path / f"out.{form}"
    out.write_text("earlier export\n")

    def broken(row: tuple) -> list[str]:
        raise UserError("disk trouble")

    monkeypatch.setattr(export, "_cells", broken)
    monkeypatch.setattr(pq.ParquetWriter, "write_batch", lambda *_a: broken(()))
    assert main([*EXPORT, "--format", form, "--out", str(out), "--data", str(data)]) == 2
    assert "disk trouble" in capsys.readouterr().err
    assert out.read_text() == "earlier export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_export_parquet_and_csv_still_match(data: Path, tmp_path: Path) -> None:
    import csv

    import pyarrow.parquet as pq

    assert main([*EXPORT, "--out", str(tmp_path / "w.csv"), "--data", str(data)]) == 0
    rows = list(csv.reader((tmp_path / "w.csv").open()))
    assert rows[0] == ["Timestamp", "flow", "temp"] and len(rows) == 41
    long = [*EXPORT, "--shape", "long", "--format", "parquet", "--out", str(tmp_path / "l.pq")]
    assert main([*long, "--data", str(data)]) == 0
    assert pq.read_table(tmp_path / "l.pq").num_rows == 80


def test_a_wide_export_refuses_a_sensor_named_like_its_time_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wire refuses a sensor called ``Timestamp`` now, but an archive written before it
    did can hold one: a wide file would hold two columns of that name (a Parquet file
    nothing can read back); long has no such column."""
    before = re.compile(r"^[A-Za-z0-9._-]{1,200}$")  # SENSOR_RE before the refusal
    for module in (wire, wire_decoder):
        monkeypatch.setattr(module, "SENSOR_RE", before)
    for cache in ("_SENSORS", "_SHAPES", "_SHAPE_OF"):
        monkeypatch.setattr(wire_decoder, cache, type(getattr(wire_decoder, cache))())
    rig = Rig(tmp_path)
    rig.send(_message(1, T0 - 60, {"Timestamp": 1.0, "temp": 2.0, "Temp": 3.0}))
    monkeypatch.undo()
    rig.batcher.flush_due()
    rig.writer.close()
    out = tmp_path / "w.parquet"
    wide = [*EXPORT, "--format", "parquet", "--out", str(out), "--data", str(tmp_path)]
    assert main(wide) == 2
    err = capsys.readouterr().err
    assert "sensor 'Timestamp'" in err and "--shape long" in err
    assert not out.exists()
    assert main([*wide, "--sensors", "temp,Temp"]) == 0
    import pyarrow.parquet as pq

    assert pq.read_table(out).column_names == ["Timestamp", "Temp", "temp"]
    assert main([*wide, "--shape", "long"]) == 0
    assert pq.read_table(out).num_rows == 3


def test_a_data_directory_below_folders_named_like_partitions(tmp_path: Path) -> None:
    """DuckDB's Hive reading takes the first ``site=`` of a path: a data directory under
    ``site=old/date=1999-01-01/`` must not lend the readings those values."""
    data = make_data(tmp_path / "site=old" / "asset=x" / "date=1999-01-01" / "data")
    with Catalog(Sources(archive=DataLayout(data).archive)) as catalog:
        rows = catalog.query(
            "SELECT site, asset, date, count(*) FROM readings GROUP BY ALL ORDER BY ALL"
        ).rows
        assert rows == [("s1", "pump-1", "2023-11-14", 40), ("s1", "pump-1", "2023-11-15", 40)]
        assert catalog.query(
            "SELECT count(*) FROM readings WHERE date = '2023-11-15' AND site = 's1'"
        ).rows == [(40,)]


def test_json_output_is_strict_json_even_for_nan_and_infinity(
    capsys: pytest.CaptureFixture[str], data: Path
) -> None:
    """SQL can make NaN and infinities (the archive never holds them); --json writes them
    as null, which jq and every strict parser read, where NaN would be refused."""
    import json

    sql = "SELECT 'nan'::DOUBLE AS x, 'inf'::DOUBLE AS y, [1.5, '-inf'::DOUBLE] AS z"
    assert main(["query", sql, "--json", "--data", str(data)]) == 0
    out = capsys.readouterr().out

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    assert json.loads(out, parse_constant=refuse) == [{"x": None, "y": None, "z": [1.5, None]}]
