"""One running stack per data folder: a second ``up`` (or ``demo``) on the same folder is
refused before it starts anything, whatever the options; with ``--no-archive`` two stacks
used to run side by side on one spool, state database and outbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cloud.runtime.layout import DataLayout
from cloud.runtime.stack import LocalStack, StackConfig
from edge.clock import SystemClock
from edge.errors import ConfigError

pytestmark = [pytest.mark.slow]


def test_a_second_stack_on_the_same_folder_is_refused_and_the_first_keeps_running(
    tmp_path: Path,
) -> None:
    data = DataLayout.at(tmp_path / "data")
    first = LocalStack(StackConfig(data=data, archive=False), SystemClock()).start()
    try:
        runtime = data.read_runtime()
        with pytest.raises(
            ConfigError, match=rf"in use by another running stack .*pid {os.getpid()}"
        ):
            LocalStack(StackConfig(data=data, archive=False), SystemClock()).start()
        assert data.read_runtime() == runtime, "the refused stack overwrote runtime.json"
        assert first.broker_url == runtime["broker"]
    finally:
        first.stop()
    again = LocalStack(StackConfig(data=data, archive=False), SystemClock()).start()
    again.stop()


def test_a_killed_stack_leaves_the_folder_free(tmp_path: Path) -> None:
    data = DataLayout.at(tmp_path / "data")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from cloud.runtime.layout import DataLayout
                DataLayout.at({str(data.root)!r}).hold()
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"pid {holder.pid}\)"):
            data.hold()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        release = data.hold()
        release()
    finally:
        holder.kill()
        holder.wait(timeout=10)
