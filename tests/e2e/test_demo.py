"""The whole story, as a user runs it: `plantwatch demo --fast --out DIR`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "cloud.cli.main", "demo", "--fast", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    return out, proc


def test_demo_exits_zero(demo_out) -> None:
    out, proc = demo_out
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["story_complete"] is True
    assert summary["checks"]["healthy_assets_quiet"] is True
    # detection comes after the fault started; anything earlier is reported apart
    times = summary["times"]
    assert times["first_anomaly"] >= times["fault_onset"]
    assert summary["detection_delay_s"] >= 0
    assert set(summary["false_alarms_before_onset"]) == {"anomalous_rows", "first", "alerts"}
    assert "false alarms before onset" in proc.stdout + proc.stderr


def test_input_csvs_follow_l4e_naming(demo_out) -> None:
    out, _ = demo_out
    files = sorted(out.rglob("input/*.csv"))
    assert files, "no input CSVs"
    for path in files:
        assert re.fullmatch(r"[A-Za-z0-9._-]+_\d{14}\.csv", path.name), path.name
        assert path.read_text().splitlines()[0].startswith("Timestamp,")


def test_results_are_l4e_lines(demo_out) -> None:
    out, _ = demo_out
    results = sorted(out.rglob("results.jsonl"))
    assert results
    seen_anomaly = False
    for path in results:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", row["timestamp"])
            assert row["prediction"] in (0, 1)
            assert row["prediction_reason"] in (
                "ANOMALY_DETECTED",
                "NO_ANOMALY_DETECTED",
                "MACHINE_OFF",
            )
            if row["prediction_reason"] != "MACHINE_OFF":
                assert 0.0 <= row["anomaly_score"] <= 1.0
                assert abs(sum(d["value"] for d in row["diagnostics"]) - 1.0) < 1e-3
            if row["prediction"] == 1:
                seen_anomaly = True
                assert all("\\" in d["name"] for d in row["diagnostics"])
    assert seen_anomaly


def test_alerts_only_for_the_faulted_asset(demo_out) -> None:
    out, _ = demo_out
    summary = json.loads((out / "summary.json").read_text())
    faulted = summary["faulted_asset"]
    alerts = [json.loads(x) for x in (out / "alerts.jsonl").read_text().splitlines()]
    assert any(faulted in a["subject"] + a["body"] for a in alerts)
    healthy = {"pump-01", "pump-02", "pump-03"} - {faulted}
    for alert in alerts:
        assert not any(h in alert["subject"] + alert["body"] for h in healthy), alert
    sms = [a for a in alerts if a["channel"] == "sms"]
    assert sms and all(len(a["body"]) <= 160 for a in sms)


def test_shadow_reports_the_command(demo_out) -> None:
    out, _ = demo_out
    summary = json.loads((out / "summary.json").read_text())
    doc = json.loads((out / "shadows" / f"{summary['faulted_asset']}.json").read_text())
    assert doc["state"]["reported"]["mode"] == "safe"


def test_streaming_demo_alerts_from_per_reading_results(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloud.cli.main",
            "demo",
            "--fast",
            "--streaming",
            "--json",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["story_complete"] and summary["checks"]["healthy_assets_quiet"]
    streamed = sorted((tmp_path / "buckets" / "plantwatch" / "stream").rglob("results.jsonl"))
    assert streamed, "streaming mode wrote no results"
    first = json.loads(streamed[0].read_text().splitlines()[0])
    assert {"timestamp", "prediction", "prediction_reason"} <= set(first)
