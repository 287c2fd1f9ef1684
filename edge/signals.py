"""Signals: the long-running commands' stop (Ctrl-C and SIGTERM mean the same clean
shutdown), and whether a process named by a pid file is still there (signal 0)."""

from __future__ import annotations

import os
import signal
import threading


def stop_event() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so `docker stop` and systemd stop a command as
    cleanly as Ctrl-C in a terminal does: the caller waits on it, then flushes and exits."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def process_alive(pid: int) -> bool:
    """Whether process *pid* exists: a pid file may outlive its writer (SIGKILL, a crash),
    and what it names then decides whether to clean up after it. Another user's process
    counts as alive; 0 and negative numbers (process groups to ``kill``) name none."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
