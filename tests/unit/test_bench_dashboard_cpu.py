"""The dashboard bench counts the CPU of the ``up`` process and of its children (the
embedded broker runs in one)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cloud.bench.dashboard import tree_cpu_s

CHILD = (
    "import time\n"
    "while time.process_time() < 0.5: pass\n"  # half a second of its own CPU, then idle
    "time.sleep(120)\n"
)


def test_cpu_of_a_child_counts_for_its_parent() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {CHILD!r}])",
        ]
    )
    try:
        deadline = time.monotonic() + 60  # a loaded machine only makes this slower
        counted = 0.0
        while time.monotonic() < deadline:
            counted = tree_cpu_s(parent.pid) - _own_cpu_s(parent.pid)
            if counted >= 0.45:
                break
            time.sleep(0.1)
        assert counted >= 0.45, f"only {counted:.2f} s of the child's CPU counted"
    finally:
        for pid in _children(parent.pid):
            os.kill(pid, 9)
        parent.wait(10)


def _own_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found
