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
