"""The whole story, as a user runs it: `plantwatch demo --fast --out DIR`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ctrl_c import cli_argv

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
    assert times["first_anomalous_reading"] >= times["fault_onset"]
    assert summary["first_anomalous_reading_s"] >= 0 and summary["detection_delay_s"] >= 0
    assert set(summary["false_alarms_before_onset"]) == {"anomalous_rows", "first", "alarms"}
    assert "false alarms before onset" in proc.stdout + proc.stderr
    # the dashboard was served while the demo ran, on a free loopback port
    assert summary["dashboard"].startswith("http://127.0.0.1:")
    assert f"dashboard  {summary['dashboard']} (live while the demo runs)" in proc.stdout


def test_the_operator_acknowledges_the_alarm_as_a_user_would(demo_out) -> None:
    out, _ = demo_out
    summary = json.loads((out / "summary.json").read_text())
    faulted = summary["faulted_asset"]
    assert summary["checks"]["acknowledged"] is True
    ack = summary["acknowledgement"]
    assert ack["command"].startswith(f"plantwatch alarms ack anomaly_score {faulted} --note")
    assert ack["result"].startswith(f"anomaly_score/{faulted}: ACKNOWLEDGED")
    times = summary["times"]
    assert times["alarm_active"] <= times["acknowledged"]
    command = ["alarms", "history", "anomaly_score", faulted, "--data", str(out), "--json"]
    history = subprocess.run(
        [sys.executable, "-m", "cloud.cli.main", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    entries = json.loads(history.stdout)
    acks = [e for e in entries if e["action"] == "ACKNOWLEDGE"]
    assert [(e["who"], e["from"], e["to"]) for e in acks] == [("demo", "ACTIVE", "ACKNOWLEDGED")]
    alerts = [json.loads(x) for x in (out / "alerts.jsonl").read_text().splitlines()]
    kinds = [a["attributes"]["kind"] for a in alerts if a["channel"] == "sms"]
    assert kinds.index("ALARM_ACTIVE") < kinds.index("ALARM_ACKNOWLEDGED")
    assert "ALARM_REMINDER" not in kinds  # acknowledged before the first reminder was due


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


def test_report_lists_moments_in_time_order_at_one_precision(demo_out) -> None:
    out, _ = demo_out
    report = (out / "report.md").read_text()
    report = report[report.index("| moment |") :]
    stamps = re.findall(r"^\| [a-z ]+ \| (\S+ \S+|-) \|$", report, flags=re.M)
    times = [t for t in stamps if t != "-"]
    assert len(times) >= 6
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", t) for t in times)
    assert times == sorted(times)
    moments = re.findall(r"^\| ([a-z ]+) \| \S", report, flags=re.M)
    assert moments.index("alarm") < moments.index("alert") < moments.index("command applied")


def test_every_figure_of_a_line_comes_from_one_record(demo_out) -> None:
    """The anomaly line shows the first anomalous row of the window it names; the alert
    shows the row the detector raised the alarm on. Both are read back from the results."""
    out, proc = demo_out
    summary = json.loads((out / "summary.json").read_text())
    asset = summary["faulted_asset"]
    rows = []
    for path in sorted((out / "buckets" / "plantwatch" / "output" / asset).rglob("results.jsonl")):
        rows += [json.loads(x) for x in path.read_text().splitlines()]
    by_time = {r["timestamp"][11:19]: r for r in rows}
    line = next(x for x in proc.stdout.splitlines() if f"anomaly    {asset}:" in x)
    first_at, score, top, share = re.search(
        r"first at (\S+), score (\S+), top sensor (\S+) \((\d+)%\)", line
    ).groups()
    row = by_time[first_at]
    assert f"{row['anomaly_score']:.2f}" == score
    best = max(row["diagnostics"], key=lambda d: d["value"])
    assert (best["name"], f"{best['value']:.0%}") == (top, f"{share}%")
    email = next(  # the detector's alarm email (the companion alarm notifies too)
        json.loads(x)
        for x in (out / "alerts.jsonl").read_text().splitlines()
        if json.loads(x)["channel"] == "email" and json.loads(x)["attributes"]["kind"] == "ALARM"
    )
    alarm_time = re.search(r"Time:\s+\S+T(\S+)Z", email["body"]).group(1)
    alarm_row = by_time[alarm_time]
    assert f"score {alarm_row['anomaly_score']:.2f}" in email["subject"]
    assert f"Score:      {alarm_row['anomaly_score']:.3f}" in email["body"]
    assert line in proc.stdout.splitlines()  # one whole line when piped, never wrapped


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A private TMPDIR: whatever the demo leaves in temp folders shows up here."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def test_streaming_demo_detects_earlier_and_keeps_its_temp_folder_when_asked(
    demo_out, scratch: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cloud.cli.main", "demo", "--fast", "--streaming", "--json",
         "--keep"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "TMPDIR": str(scratch)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["story_complete"] and summary["checks"]["healthy_assets_quiet"]
    kept = Path(summary["out"])
    assert [p.name for p in scratch.iterdir()] == [kept.name]  # no broker folder left
    assert kept.name.startswith("plantwatch-demo-") and (kept / "report.md").is_file()
    streamed = sorted((kept / "buckets" / "plantwatch" / "stream").rglob("results.jsonl"))
    assert streamed, "streaming mode wrote no results"
    first = json.loads(streamed[0].read_text().splitlines()[0])
    assert {"timestamp", "prediction", "prediction_reason"} <= set(first)
    window = json.loads((demo_out[0] / "summary.json").read_text())
    assert summary["mode"] == "streaming" and window["mode"] == "window"
    assert summary["detection_delay_s"] < window["detection_delay_s"]
    assert summary["alarm_delay_s"] < window["alarm_delay_s"]


def test_default_demo_removes_its_temp_folders_even_when_interrupted(scratch: Path) -> None:
    proc = subprocess.Popen(
        cli_argv("demo", "--fast"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    try:
        for line in proc.stdout:
            if " fleet " in line:  # the stack and the agent are up: both temp folders exist
                break
        names = sorted(p.name[:16] for p in scratch.iterdir())
        assert names == ["plantwatch-broke", "plantwatch-demo-"]
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert list(scratch.iterdir()) == []
