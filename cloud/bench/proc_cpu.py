"""CPU time from Linux's ``/proc``: what the benches read for processes and threads that
``resource`` cannot see (children still running, single threads)."""

from __future__ import annotations

import os
from pathlib import Path


def stat_cpu_s(stat_file: str | os.PathLike[str]) -> float:
    """User+system CPU seconds in a ``/proc/PID/stat`` or ``/proc/PID/task/TID/stat`` file;
    OSError once the process or thread is gone."""
    # the command name, in parentheses, may hold spaces: count fields after its last ')'
    fields = Path(stat_file).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads_cpu_s(pid: int | str = "self") -> dict[int, tuple[str, float]]:
    """Every live thread of a process: native id -> (its kernel name, user+system CPU
    seconds). A thread that ends while this reads is left out; its time stays in the
    process's own total (``/proc/PID/stat``), which counts ended threads too."""
    found: dict[int, tuple[str, float]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        head, _, tail = text.rpartition(")")
        fields = tail.split()
        name = head.split("(", 1)[1]
        found[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / _TICKS)
    return found


_TICKS = os.sysconf("SC_CLK_TCK")
