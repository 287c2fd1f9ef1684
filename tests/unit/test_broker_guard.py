"""The broker guard stops its broker only when the starter is gone, and never a stranger."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from cloud.runtime import broker_guard


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_the_broker_is_stopped_once_the_starter_is_gone() -> None:
    child = _sleeper()
    try:
        started = broker_guard.start_time(child.pid)
        assert started is not None
        not_my_parent = os.getppid() + 1
        assert broker_guard.guard(not_my_parent, child.pid, started) == 1
        assert child.wait(10) == -9  # SIGKILL: no PUBACK during a graceful stop
    finally:
        child.kill()


def test_the_starters_end_of_the_lifeline_closing_stops_the_broker_at_once() -> None:
    child = _sleeper()
    read_end, write_end = os.pipe()
    try:
        started = broker_guard.start_time(child.pid)
        assert started is not None
        os.close(write_end)
        start = time.monotonic()
        assert broker_guard.guard(os.getppid(), child.pid, started, read_end) == 1
        assert time.monotonic() - start < broker_guard.POLL_S
        assert child.wait(10) == -9
    finally:
        os.close(read_end)
        child.kill()


def test_the_guard_ends_when_the_broker_exits_and_spares_a_reused_pid() -> None:
    child = _sleeper()
    try:
        started = broker_guard.start_time(child.pid)
        assert started is not None
        assert broker_guard.guard(os.getppid(), child.pid, "1") == 0  # another process's pid
        assert child.poll() is None
        child.kill()
        child.wait(10)
        assert broker_guard.start_time(child.pid) is None
        assert broker_guard.guard(os.getppid(), child.pid, started) == 0
    finally:
        child.kill()


def test_a_broker_with_a_state_file_gets_sigterm_to_write_it() -> None:
    # mosquitto with persistence writes what it acknowledged to its file on SIGTERM
    child = _sleeper()
    read_end, write_end = os.pipe()
    try:
        started = broker_guard.start_time(child.pid)
        assert started is not None
        os.close(write_end)
        assert broker_guard.guard(os.getppid(), child.pid, started, read_end, graceful_s=10) == 1
        assert child.wait(10) == -15
    finally:
        os.close(read_end)
        child.kill()


def test_a_broker_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            " print(flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    read_end, write_end = os.pipe()
    try:
        assert child.stdout is not None
        child.stdout.readline()  # SIGTERM is ignored from here on
        started = broker_guard.start_time(child.pid)
        assert started is not None
        os.close(write_end)
        start = time.monotonic()
        assert broker_guard.guard(os.getppid(), child.pid, started, read_end, graceful_s=0.5) == 1
        assert child.wait(10) == -9
        assert time.monotonic() - start >= 0.5
    finally:
        os.close(read_end)
        child.kill()
