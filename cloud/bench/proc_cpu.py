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
    """Every live thread of a process: native id -> (its kernel name, CPU seconds).

    The CPU time is the scheduler's own count in nanoseconds (``schedstat``), not
    ``stat``'s clock ticks: ticks are truncated per thread (10 ms each), which over a dozen
    short-lived threads adds up to tens of milliseconds. A thread that ends while this
    reads is left out; its time stays in the process's total (``time.process_time``)."""
    found: dict[int, tuple[str, float]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            name = (task / "comm").read_text().rstrip("\n")
            try:
                seconds = int((task / "schedstat").read_text().split()[0]) / 1e9
            except FileNotFoundError:  # a kernel without schedstats: clock ticks
                seconds = stat_cpu_s(task / "stat")
        except OSError:
            continue  # the thread ended meanwhile
        found[int(task.name)] = (name, seconds)
    return found
