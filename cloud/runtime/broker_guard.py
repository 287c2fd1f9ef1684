"""Stop a broker binary when the process that started it is gone.

A SIGKILLed ``plantwatch up`` (or bench) cannot stop its broker, and the broker runs in a
session of its own so that a terminal's Ctrl-C reaches the stack first: without a guard a
mosquitto child would keep its port and run on with no owner. amqtt, being Python, watches
its parent itself (``cloud.runtime.amqtt_server --parent-pid``); mosquitto cannot, so this
small process does it for it. ``PR_SET_PDEATHSIG`` would not do: it is cleared when
mosquitto started as root drops to its own user, and it fires when the starting *thread*
ends.

The guard is the starter's child, so the starter's death shows as a new ``getppid``. The
broker is identified by its pid and its start time, so a pid reused after the broker
exited is never signalled.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

POLL_S = 0.5
GRACE_S = 5.0


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22);
    None once it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def guard(parent_pid: int, broker_pid: int, broker_started: str) -> int:
    """Wait until the broker exits (0) or the parent is gone (then stop the broker: 1)."""
    while start_time(broker_pid) == broker_started:
        if os.getppid() != parent_pid:
            _stop(broker_pid, broker_started)
            return 1
        time.sleep(POLL_S)
    return 0


def _stop(pid: int, started: str) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline:
        if start_time(pid) != started:
            return
        time.sleep(0.05)
    if start_time(pid) == started:
        os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plantwatch-broker-guard")
    parser.add_argument("--parent-pid", type=int, required=True, help="the broker's starter")
    parser.add_argument("--broker-pid", type=int, required=True, help="the broker to stop")
    args = parser.parse_args(argv)
    started = start_time(args.broker_pid)
    if started is None:
        return 0
    return guard(args.parent_pid, args.broker_pid, started)


if __name__ == "__main__":
    sys.exit(main())
