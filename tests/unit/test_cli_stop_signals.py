"""A long-running command stopped the moment it says it is up stops cleanly.

`plantwatch up`, `dashboard serve` and `demo --keep-open` print their address (which
scripts, supervisors and tests wait for) and only then installed their SIGINT/SIGTERM
handler: a stop in that window took Python's default action, so `up` died without
flushing its open windows (exit -15, or a KeyboardInterrupt traceback for Ctrl-C).

Each case runs in a child process, which sends itself SIGTERM as soon as its server has
started (a real signal to pytest's own process would end the run).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

START_AND_STOP = """
import os, signal, sys
from pathlib import Path


class Started:
    broker_url = url = "http://127.0.0.1:1"
    dashboard = auth = None

    def stop(self):
        print("stopped cleanly", flush=True)


def start(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # the operator's stop, as early as it can come
    return Started()


command, data = sys.argv[1], sys.argv[2]
if command == "up":
    from cloud.runtime import stack

    stack.LocalStack.start = start
    from cloud.cli.main import main

    sys.exit(main(["up", "--port", "0", "--no-dashboard", "--data", data]))
from cloud.dashboard import server

server.DashboardServer.start = start
if command == "dashboard":
    from cloud.cli.main import main

    sys.exit(main(["dashboard", "--port", "0", "--data", data]))
from cloud.cli.demo import _keep_open

_keep_open(Path(data), server.DashboardConfig(port=0), None)
"""


@pytest.mark.parametrize("command", ["up", "dashboard", "demo"])
def test_a_stop_right_after_start_is_a_clean_stop(command: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", START_AND_STOP, command, str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.rstrip().endswith("stopped cleanly")
