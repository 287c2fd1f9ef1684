"""Chaos: the agent process is SIGKILLed 5 times mid-run; no accepted reading is lost."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from edge_helpers import Receiver

from cloud.runtime.broker import EmbeddedBroker

CHILD = Path(__file__).with_name("agent_child.py")
ROOT = Path(__file__).resolve().parents[2]
KILLS = 5
PER_RUN = 2_000


def last_accepted(path: Path) -> tuple[int, bool]:
    lines = path.read_text().split() if path.exists() else []
    numbers = [int(x) for x in lines if x != "done"]
    return (max(numbers) if numbers else -1), "done" in lines


@pytest.mark.slow
@pytest.mark.timeout(120, method="thread")
def test_no_accepted_reading_is_lost_across_five_sigkills(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    receiver = Receiver(broker.host, broker.port, client_id="rx-kill")
    queue = tmp_path / "queue.db"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    rng = random.Random(7)
    start = 0
    try:
        for run in range(KILLS + 1):
            accepted = tmp_path / f"accepted-{run}.txt"
            child = subprocess.Popen(
                [
                    sys.executable,
                    str(CHILD),
                    f"--broker={broker.url}",
                    f"--queue={queue}",
                    f"--accepted={accepted}",
                    f"--start={start}",
                    f"--count={PER_RUN}",
                ],
                env=env,
                stderr=subprocess.DEVNULL,
            )
            if run < KILLS:
                # kill mid-run: after it has accepted some readings, long before it is done
                deadline = time.monotonic() + 30
                while last_accepted(accepted)[0] < start + rng.randint(100, 900):
                    assert time.monotonic() < deadline and child.poll() is None
                    time.sleep(0.01)
                child.kill()
                child.wait()
                top, done = last_accepted(accepted)
                assert not done
                start = top + 1
            else:
                assert child.wait(60) == 0
                top, done = last_accepted(accepted)
                assert done
        # every index up to the last accepted one, for both assets
        expected = {(a, 1_700_000_000_000 + i) for a in ("k1", "k2") for i in range(top + 1)}
        assert receiver.wait_for(len(expected), 30), f"{receiver.count()} of {len(expected)}"
        assert expected <= set(receiver.readings)
        assert receiver.changed_redeliveries == 0
    finally:
        receiver.close()
    print(
        f"\nkill chaos: {len(expected)} readings, {receiver.messages} messages, "
        f"{receiver.duplicate_messages} duplicates"
    )
