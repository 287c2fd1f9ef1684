"""Chaos: SIGKILL at each exact point of the send path, then a restart that flushes.

The random kills of test_edge_agent_kill land wherever they land; these pin the two windows
the store-and-forward promise hangs on: a message the broker has (its PUBACK is on the
way, or arrived but not yet recorded) and a PUBACK recorded but not yet deleted from the
queue. Every reading must arrive, and a message sent twice must keep its ``msg_id`` (same
``seq``) and its content, so the cloud batcher de-duplicates it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from edge_helpers import Receiver

from cloud.runtime.broker import EmbeddedBroker

CHILD = Path(__file__).with_name("agent_child.py")
ROOT = Path(__file__).resolve().parents[2]
COUNT = 60


def _child(broker: EmbeddedBroker, queue: Path, accepted: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(CHILD),
        f"--broker={broker.url}",
        f"--queue={queue}",
        f"--accepted={accepted}",
        *extra,
    ]


@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("point", ["publish", "puback", "ack"])
def test_a_kill_at_each_send_point_loses_nothing_and_resends_the_same_seq(
    broker: EmbeddedBroker, tmp_path: Path, point: str
) -> None:
    receiver = Receiver(broker.host, broker.port, client_id=f"rx-point-{point}")
    queue = tmp_path / "queue.db"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    try:
        killed = subprocess.run(
            _child(
                broker, queue, tmp_path / "a0", "--start=0", f"--count={COUNT}", f"--die-at={point}"
            ),
            env=env,
            stderr=subprocess.DEVNULL,
            timeout=40,
        )
        assert killed.returncode == -signal.SIGKILL
        assert (tmp_path / "a0").read_text().split()[-1] == "done"
        restarted = subprocess.run(
            _child(broker, queue, tmp_path / "a1", f"--start={COUNT}", "--count=0"),
            env=env,
            stderr=subprocess.DEVNULL,
            timeout=40,
        )
        assert restarted.returncode == 0
        expected = {(a, 1_700_000_000_000 + i) for a in ("k1", "k2") for i in range(COUNT)}
        assert receiver.wait_for(len(expected), 20), f"{receiver.count()} of {len(expected)}"
        assert set(receiver.readings) == expected
        assert receiver.changed_redeliveries == 0
        if point != "publish":  # the broker had the first copy: the restart sent it again
            assert receiver.duplicate_messages >= 1
    finally:
        receiver.close()
