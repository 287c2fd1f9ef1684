"""``bench archive`` on small sizes reports its documented keys, the ingest beside it too."""

from __future__ import annotations

import json

import pytest

from cloud.cli.main import main


def test_bench_archive_reports_writes_and_query(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "archive", "--readings", "30000", "--write-readings", "6000"]
    assert main([*argv, "--repeat", "1", "--ingest-readings", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["readings_per_s"] > 0 and report["query_s"] > 0
    assert report["query_values"] == report["query_values_scanned"] == 30000
    assert report["write_values"] == 6000
    assert "ingest" not in report


@pytest.mark.slow
def test_bench_archive_runs_ingest_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "archive", "--readings", "2000", "--write-readings", "2000"]
    assert main([*argv, "--repeat", "1", "--ingest-readings", "2000", "--json"]) == 0
    ingest = json.loads(capsys.readouterr().out)["ingest"]
    assert ingest["lost"] == 0 and ingest["duplicated"] == 0
    assert ingest["archived_values"] == 2000 * 6  # every value of every reading
    assert ingest["readings_per_s"] > 0 and ingest["baseline"]["readings_per_s"] > 0
    assert ingest["ratio"] > 0 and ingest["cpu_ratio"] > 0
