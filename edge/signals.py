"""The long-running commands' stop: Ctrl-C and SIGTERM mean the same clean shutdown."""

from __future__ import annotations

import signal
import threading


def stop_event() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so `docker stop` and systemd stop a command as
    cleanly as Ctrl-C in a terminal does: the caller waits on it, then flushes and exits."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop
