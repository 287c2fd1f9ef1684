"""The demo report: a Markdown page and a plot of what the pipeline saw and did."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud.runtime.layout import OUTPUT_PREFIX, DataLayout


def write_report(
    layout: DataLayout, summary: dict[str, Any], asset: str, prefix: str = OUTPUT_PREFIX
) -> Path:
    plot = _plot(layout, summary, asset, prefix)
    lines = ["# plantwatch demo report", ""]
    verdict = "complete" if summary["story_complete"] else "INCOMPLETE"
    lines.append(f"Story {verdict}. Faulted asset: `{asset}`.")
    lines.append("")
    lines.append("| check | result |")
    lines.append("|---|---|")
    for name, ok in summary["checks"].items():
        lines.append(f"| {name.replace('_', ' ')} | {'yes' if ok else 'no'} |")
    lines.append("")
    lines.append("| moment | plant time (UTC) |")
    lines.append("|---|---|")
    for name, value in summary["times"].items():  # in time order, whole seconds
        shown = value.replace("T", " ").removesuffix("+00:00") if value else "-"
        lines.append(f"| {name.replace('_', ' ')} | {shown} |")
    lines.append("")
    lines.append(f"Mode: {summary.get('mode', 'window')}. From the fault's onset:")
    lines.append("")
    for key, label in (
        ("first_anomalous_reading_s", "first anomalous reading (data time)"),
        ("detection_delay_s", "first anomalous result reported"),
        ("alarm_delay_s", "alarm and its alert"),
    ):
        value = summary.get(key)
        lines.append(f"- {label}: {'-' if value is None else f'{value / 60:.1f} min'}")
    if plot is not None:
        lines += ["", f"![anomaly score and sensors]({plot.name})"]
    lines += [
        "",
        "Files: `buckets/plantwatch/input/` (L4E input CSVs), "
        "`buckets/plantwatch/output/` (results.jsonl), `alerts.jsonl`, `shadows/`, "
        "`executions.json`, `models/`.",
    ]
    path = layout.root / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _results(layout: DataLayout, asset: str, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted((layout.bucket / prefix / asset).glob("*/results.jsonl")):
        rows.extend(json.loads(x) for x in path.read_text().splitlines() if x.strip())
    return sorted(rows, key=lambda r: r["timestamp"])


def _plot(layout: DataLayout, summary: dict[str, Any], asset: str, prefix: str) -> Path | None:
    rows = [r for r in _results(layout, asset, prefix) if "anomaly_score" in r]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC) for r in rows]
    scores = [r["anomaly_score"] for r in rows]
    shares: dict[str, list[float]] = {}
    for r in rows:
        for d in r.get("diagnostics", []):
            shares.setdefault(d["name"], []).append(d["value"])
    top = sorted(shares, key=lambda n: -max(shares[n]))[:3]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    ax1.plot(times, scores, color="tab:red", lw=1, label="anomaly score")
    ax1.axhline(0.5, color="grey", ls="--", lw=0.8, label="threshold")
    marks = summary["times"]
    for name, color in (
        ("fault_onset", "orange"),
        ("alarm", "red"),
        ("command_applied", "tab:blue"),
        ("recovered", "green"),
    ):
        if marks.get(name):
            when = datetime.fromisoformat(marks[name])
            ax1.axvline(when, color=color, lw=1.2, alpha=0.8, label=name.replace("_", " "))
            ax2.axvline(when, color=color, lw=1.2, alpha=0.8)
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("score")
    ax1.set_title(f"{asset}: anomaly score (results.jsonl) and top contributing sensors")
    ax1.legend(loc="upper left", fontsize=8)
    for name in top:
        values = [
            next((d["value"] for d in r.get("diagnostics", []) if d["name"] == name), 0.0)
            for r in rows
        ]
        ax2.plot(times, values, lw=1, label=name)
    ax2.set_ylabel("share of score")
    ax2.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path = layout.root / "report.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
