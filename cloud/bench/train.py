"""``plantwatch bench train``: training time and scoring rate on generated plant data, and
``plantwatch model train`` from CSV end to end as users run it.

The core figures: ``--rows`` (525,600 = one year at one minute) x ``--sensors`` (30), three
operating modes driven by a shared load, correlated sensors, noise, seeded. Training and
scoring run on the full frame through the public ``train`` / ``Model.score`` API
(resampling skipped: the data are already regular).

Each scoring call's CPU and memory work is reported next to its rate, for reading a rate
taken on a busy or slow host: ``score_user_ms_runs`` and ``score_sys_ms_runs`` (the
process's user and system CPU during the call, every thread) and ``score_minor_faults_runs``
(pages the call faulted in: fresh memory), with their medians, and the same as ``alarm_*``
for the monitor's calls. The rate depends on the load; these do not, or much less: a call
whose system time or faults jump is paying for fresh memory, not arithmetic.

``rows_per_s`` (the design brief's key for the scoring rate) and ``score_rows_per_s`` are
the model's scoring rate. ``alarm_rows_per_s`` scores the same frame the way the scheduler and streaming do: the
model and its alarm rules (:class:`cloud.inference.monitor.Monitor`), one asset's series
with its state; ``baseline`` is the model alone in the same run (``score_rows_per_s``),
``ratio`` the first over the second. Runs of the two alternate, so load on the machine
hits both alike.

The end-to-end figures: ``plantwatch sim history --assets 3 --days 365 --rate 1min``
writes a year of CSVs (525,600 rows x 30 sensors), then ``plantwatch model train`` runs
on them in a child process, ``--csv-runs`` times: ``end_to_end_s`` is its wall time
(read, grade, train, score, write the model and its diagnostics), ``peak_rss_mb`` its peak
resident memory (the child's ``VmHWM``), both medians.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cloud.cli.output import print_report, stderr
from edge.cliargs import non_negative_int, positive_int
from edge.errors import PlantwatchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rows", type=positive_int, default=525_600, help="rows of synthetic data (default 525600)"
    )
    parser.add_argument(
        "--sensors", type=positive_int, default=30, help="sensors per row (default 30)"
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=3, help="scoring runs; the median is kept"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--csv-days",
        type=non_negative_int,
        default=365,
        help="days of history for the end-to-end run from CSV; 0 skips it (default 365)",
    )
    parser.add_argument(
        "--csv-assets", type=positive_int, default=3, help="assets (10 sensors each; default 3)"
    )
    parser.add_argument(
        "--csv-rate", default="1min", help="sample period of the history (default 1min)"
    )
    parser.add_argument(
        "--csv-runs",
        type=positive_int,
        default=3,
        help="end-to-end runs of model train; the median is kept (default 3)",
    )


def generate(rows: int, sensors: int, seed: int = 0):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    modes = np.array([20.0, 50.0, 80.0])
    mode = np.repeat(rng.integers(0, 3, rows // 600 + 1), 600)[:rows]
    load = modes[mode] + rng.normal(0, 2.0, rows)
    gains = rng.uniform(0.2, 3.0, sensors)
    offsets = rng.uniform(-10, 10, sensors)
    noise = rng.uniform(0.2, 2.0, sensors)
    values = load[:, None] * gains + offsets + rng.normal(0, 1, (rows, sensors)) * noise
    index = pd.date_range("2025-01-01", periods=rows, freq="60s", tz="UTC")
    columns = [f"asset\\s{i:02d}" for i in range(sensors)]
    return pd.DataFrame(values, index=index, columns=columns)


def run(args: argparse.Namespace) -> int:
    import statistics

    from cloud.inference.model import TrainConfig, train
    from cloud.inference.monitor import Monitor

    began = time.perf_counter()
    frame = generate(args.rows, args.sensors, args.seed)
    stderr.print(f"generated {args.rows} x {args.sensors} in {time.perf_counter() - began:.1f} s")
    began = time.perf_counter()
    model = train(frame, TrainConfig())
    train_s = time.perf_counter() - began
    rates, alarm_rates = [], []
    work: dict[str, list[float]] = {"user_ms": [], "sys_ms": [], "minor_faults": []}
    alarm_work: dict[str, list[float]] = {"user_ms": [], "sys_ms": [], "minor_faults": []}
    monitor = Monitor(model)
    for _ in range(max(1, args.repeat)):
        before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        result = model.score(frame)
        rates.append(len(result.index) / (time.perf_counter() - began))
        _add_work(work, before)
        before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        watched = monitor.score(frame)
        alarm_rates.append(len(watched.result.index) / (time.perf_counter() - began))
        _add_work(alarm_work, before)
    alarm_rate = statistics.median(alarm_rates)
    document: dict[str, Any] = {
        "rows": args.rows,
        "sensors": args.sensors,
        "train_s": round(train_s, 2),
        "rows_per_s": round(statistics.median(rates)),
        "score_rows_per_s": round(statistics.median(rates)),
        "score_rows_per_s_runs": [round(r) for r in rates],
        **{f"score_{name}": round(statistics.median(values)) for name, values in work.items()},
        **{f"score_{name}_runs": [round(v) for v in values] for name, values in work.items()},
        "modes": model.info["modes"],
        "false_alarm_pct_on_training": round(100 * float(result.prediction.mean()), 3),
        "alarm_rows_per_s": round(alarm_rate),
        "alarm_rows_per_s_runs": [round(r) for r in alarm_rates],
        **{
            f"alarm_{name}": round(statistics.median(values)) for name, values in alarm_work.items()
        },
        **{f"alarm_{name}_runs": [round(v) for v in values] for name, values in alarm_work.items()},
        "alarm_pct_on_training": round(100 * float(watched.result.prediction.mean()), 3),
        "baseline": {"score_rows_per_s": round(statistics.median(rates))},
        "ratio": round(alarm_rate / statistics.median(rates), 3),
        "cpus": os.cpu_count(),
    }
    del frame, model, result, monitor, watched
    if args.csv_days:
        document.update(end_to_end(args))
    document["goal"] = {
        "train_s": 60,
        "score_rows_per_s": 2_000_000,
        "end_to_end_s": 20,
        "peak_rss_per_csv_size": 3,
    }
    print_report(document, as_json=args.json)
    return 0


def _add_work(work: dict[str, list[float]], before: resource.struct_rusage) -> None:
    """The process's user and system CPU (ms) and minor faults since *before*."""
    after = resource.getrusage(resource.RUSAGE_SELF)
    work["user_ms"].append(1000 * (after.ru_utime - before.ru_utime))
    work["sys_ms"].append(1000 * (after.ru_stime - before.ru_stime))
    work["minor_faults"].append(after.ru_minflt - before.ru_minflt)


def end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    """``sim history`` then ``model train`` as child processes, timed and measured."""
    import statistics

    with tempfile.TemporaryDirectory(prefix="plantwatch-bench-train-") as tmp:
        root = Path(tmp)
        history = [
            "sim", "history", "--assets", str(args.csv_assets), "--days", str(args.csv_days),
            "--rate", args.csv_rate, "--seed", str(args.seed), "--out", str(root / "history"),
        ]  # fmt: skip
        stderr.print(f"bench train: plantwatch {' '.join(history[:-2])}", markup=False)
        run_measured(history)
        csvs = sorted((root / "history" / "data").rglob("*.csv"))
        csv_bytes = sum(p.stat().st_size for p in csvs)
        command = ["model", "train", "--dataset", str(root / "history" / "data"), "--json"]
        walls, peaks = [], []
        for run in range(args.csv_runs):
            stderr.print(
                f"bench train: plantwatch model train ({run + 1}/{args.csv_runs})", markup=False
            )
            data = root / f"state-{run}"
            wall, peak = run_measured([*command, "--data", str(data), "--name", "bench"])
            walls.append(wall)
            peaks.append(peak)
        trained = (root / "state-0" / "models" / "bench" / "v1").is_dir()
    peak_mb = statistics.median(peaks) / 2**20
    return {
        "end_to_end_s": round(statistics.median(walls), 2),
        "end_to_end_s_runs": [round(w, 2) for w in walls],
        "peak_rss_mb": round(peak_mb, 1),
        "peak_rss_mb_runs": [round(p / 2**20, 1) for p in peaks],
        "csv_mb": round(csv_bytes / 2**20, 3),
        "peak_rss_per_csv_size": round(peak_mb / (csv_bytes / 2**20), 2),
        "end_to_end": {
            "command": "plantwatch model train --dataset DIR --json",
            "history": f"plantwatch sim history --assets {args.csv_assets} "
            f"--days {args.csv_days} --rate {args.csv_rate}",
            "csv_files": len(csvs),
            "trained": trained,
        },
    }


_MEASURED = """
import atexit, runpy, sys
report = sys.argv.pop(1)
def peak():
    with open("/proc/self/status") as status, open(report, "w") as out:
        out.write(next((l for l in status if l.startswith("VmHWM:")), ""))
atexit.register(peak)
sys.argv[0] = "plantwatch"
runpy.run_module("cloud.cli.main", run_name="__main__")
"""


def run_measured(argv: list[str]) -> tuple[float, int]:
    """Run ``plantwatch ARGV`` in a child process: wall seconds and peak RSS in bytes.

    The peak is the child's own ``VmHWM`` at exit. ``wait4``'s ``ru_maxrss`` would not do:
    Linux carries the parent's resident size at fork into a child's maximum, so a bench
    that holds a large frame would report it for every child it starts."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as errors:
        report = Path(tmp) / "peak"
        began = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", _MEASURED, str(report), *argv],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            check=False,
        )
        wall = time.perf_counter() - began
        if child.returncode != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace").strip()[-500:]
            raise PlantwatchError(f"plantwatch {' '.join(argv[:2])} failed: {text}")
        fields = report.read_text().split() if report.exists() else []
    if len(fields) < 2:  # no /proc (not Linux): the kernel's figure, which may be higher
        scale = 1 if sys.platform == "darwin" else 1024
        return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return wall, int(fields[1]) * 1024  # "VmHWM:  123456 kB"
