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
import select
import signal
import sys
import time

POLL_S = 0.5


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22);
    None once it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def guard(
    parent_pid: int,
    broker_pid: int,
    broker_started: str,
    lifeline_fd: int | None = None,
    graceful_s: float = 0.0,
) -> int:
    """Wait until the broker exits (0) or the parent is gone (then stop the broker: 1).

    The parent's end of the lifeline pipe closing tells at once; ``getppid`` is the
    fallback, polled every ``POLL_S`` (a child the parent forked can hold the pipe open)."""
    watched = [lifeline_fd] if lifeline_fd is not None else []
    while start_time(broker_pid) == broker_started:
        if os.getppid() != parent_pid:
            _stop(broker_pid, broker_started, graceful_s)
            return 1
        if watched:
            readable, _, _ = select.select(watched, [], [], POLL_S)
            if readable and os.read(watched[0], 1) == b"":
                _stop(broker_pid, broker_started, graceful_s)
                return 1
        else:
            time.sleep(POLL_S)
    return 0


def _stop(pid: int, started: str, graceful_s: float = 0.0) -> None:
    """Without *graceful_s*, SIGKILL at once: the subscribers the broker holds messages for
    (the rules runner) died with its starter, so each PUBACK it sent during a graceful stop
    told a device to delete a reading nobody keeps, when it keeps nothing on disk
    (``persistence false``). A broker with a state file (mosquitto's ``persistence true``)
    gets SIGTERM and *graceful_s* seconds: it writes what it acknowledged, queued for the
    dead subscriber's persistent session, to that file, which the next start loads."""
    if start_time(pid) != started:
        return
    try:
        if graceful_s > 0:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + graceful_s
            while time.monotonic() < deadline:
                if start_time(pid) != started:
                    return
                time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plantwatch-broker-guard")
    parser.add_argument("--parent-pid", type=int, required=True, help="the broker's starter")
    parser.add_argument("--broker-pid", type=int, required=True, help="the broker to stop")
    parser.add_argument(
        "--lifeline-fd", type=int, help="read end of a pipe the parent holds: EOF when it is gone"
    )
    parser.add_argument(
        "--graceful-s",
        type=float,
        default=0.0,
        help="SIGTERM and this long to exit before SIGKILL (a broker with a state file)",
    )
    args = parser.parse_args(argv)
    started = start_time(args.broker_pid)
    if started is None:
        return 0
    return guard(args.parent_pid, args.broker_pid, started, args.lifeline_fd, args.graceful_s)


if __name__ == "__main__":
    sys.exit(main())
