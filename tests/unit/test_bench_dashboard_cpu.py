"""The dashboard bench counts the CPU of the ``up`` process and of its children (the
embedded broker runs in one)."""

from __future__ import annotations

import subprocess
import sys
import time

from cloud.bench.dashboard import tree_cpu_s


def test_cpu_of_a_child_counts_for_its_parent() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; subprocess.run([sys.executable, '-c',"
            " 'import time\\nend = time.time() + 1.5\\nwhile time.time() < end: pass'])",
        ]
    )
    try:
        time.sleep(1.2)
        alone = _own_cpu_s(parent.pid)
        with_children = tree_cpu_s(parent.pid)
        assert with_children - alone > 0.5
    finally:
        parent.wait(10)


def _own_cpu_s(pid: int) -> float:
    import os
    from pathlib import Path

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
