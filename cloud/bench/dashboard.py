"""``plantwatch bench dashboard``: what the web dashboard costs an idle ``plantwatch up``.

Three configurations of a real ``plantwatch up`` (embedded broker, no devices), each run
``--runs`` times in turn (A B C A B C ...) so a machine's drifting load falls on all alike:

- ``baseline``: ``--no-dashboard``;
- ``idle``: the dashboard served, no browser;
- ``page_open``: the dashboard served and one client doing what an open page does when
  nothing changes: ``GET /api/v1/version`` once a second.

CPU is the user+system time of the ``up`` process and its children (the broker runs in a
child process) over ``--seconds`` of wall time, after a settling pause. Reported as medians;
``added_*`` are differences from the baseline median in percentage points of one core.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from cloud.bench.proc_cpu import stat_cpu_s
from edge.cliargs import float_range, int_range

CONFIGS = ("baseline", "idle", "page_open")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds",
        type=float_range(1, 600, what="seconds from 1 to 600"),
        default=20.0,
        help="measured wall time per run (default 20)",
    )
    parser.add_argument(
        "--runs",
        type=int_range(1, 20, what="a whole number from 1 to 20"),
        default=3,
        help="runs of each configuration; medians are reported (default 3)",
    )
    parser.add_argument(
        "--settle",
        type=float_range(0, 60, what="seconds from 0 to 60"),
        default=3.0,
        help="pause after start-up before measuring (default 3)",
    )


def run(args: argparse.Namespace) -> int:
    from cloud.cli.output import print_fields, print_json, stderr

    samples: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="plantwatch-bench-dashboard-") as work:
        for run_index in range(args.runs):
            for name in CONFIGS:
                stderr.print(
                    f"bench dashboard: run {run_index + 1}/{args.runs}, {name}",
                    markup=False,
                )
                samples[name].append(
                    measure(Path(work) / f"{name}-{run_index}", name, args.seconds, args.settle)
                )
    medians = {name: round(statistics.median(values), 2) for name, values in samples.items()}
    base = medians["baseline"]
    doc: dict[str, Any] = {
        "seconds": args.seconds,
        "runs": args.runs,
        "idle_cpu_pct": medians["idle"],
        "page_open_cpu_pct": medians["page_open"],
        "added_idle_cpu_pct": round(medians["idle"] - base, 2),
        "added_page_open_cpu_pct": round(medians["page_open"] - base, 2),
        "baseline": {"idle_cpu_pct": base},
        "ratio": round(medians["idle"] / base, 3) if base > 0 else None,
        "page_open_ratio": round(medians["page_open"] / base, 3) if base > 0 else None,
        "runs_cpu_pct": {name: [round(v, 2) for v in values] for name, values in samples.items()},
    }
    if args.json:
        print_json(doc)
    else:
        print_fields(
            {k: v for k, v in doc.items() if not isinstance(v, dict)}
            | {"baseline idle_cpu_pct": base}
        )
    return 0


def measure(data: Path, config: str, seconds: float, settle: float) -> float:
    """CPU % of one core used by one ``plantwatch up`` in *config* over *seconds*."""
    command = [sys.executable, "-m", "cloud.cli.main", "up", "--data", str(data), "--port", "0"]
    command += ["--no-dashboard"] if config == "baseline" else ["--dashboard-port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stop = threading.Event()
    poller: threading.Thread | None = None
    try:
        proc.stdout.readline()  # broker: ...
        url = None
        if config != "baseline":
            url = proc.stdout.readline().strip().removeprefix("dashboard: ")
        if config == "page_open" and url:
            poller = threading.Thread(target=_poll, args=(url, stop), daemon=True)
            poller.start()
        time.sleep(settle)
        cpu0, wall0 = tree_cpu_s(proc.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = tree_cpu_s(proc.pid), time.monotonic()
        return 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
    finally:
        stop.set()
        if poller is not None:
            poller.join(5)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _poll(url: str, stop: threading.Event) -> None:
    """What an open page does while nothing changes: ask for the version once a second."""
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen(f"{url}/api/v1/version", timeout=5) as response:
                response.read()
        except OSError:
            continue


def tree_cpu_s(pid: int) -> float:
    """User+system CPU seconds of *pid* and every live descendant."""
    total = 0.0
    for each in _tree(pid):
        try:
            total += stat_cpu_s(f"/proc/{each}/stat")
        except OSError:
            continue
    return total


def _tree(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                queue += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found
