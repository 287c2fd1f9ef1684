"""process_alive: what a pid file names decides whether to clean up after its writer."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edge.signals import process_alive


def test_this_process_is_alive_and_a_reaped_child_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_alive(os.getpid())
    assert not process_alive(child.pid)


@pytest.mark.parametrize("pid", [0, -1])
def test_a_pid_that_names_a_process_group_names_no_process(pid: int) -> None:
    # os.kill(0, 0) and os.kill(-1, 0) succeed (they signal groups): a pid file holding
    # 0 must not keep a dead starter's folder forever
    assert not process_alive(pid)
