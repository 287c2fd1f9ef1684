"""The agent as a separate process, for the SIGKILL test.

Submits readings ``start..start+count`` one small batch at a time and, after each
``submit`` returns (the batch is committed), appends the last accepted index to a file,
so the test knows a lower bound of what the agent accepted when it was killed.

``--die-at`` kills the process with SIGKILL at one exact point of the send path, after
queueing every reading before the agent starts: ``publish`` (right after the QoS 1 publish
left), ``puback`` (the PUBACK arrived, before the agent records it) or ``ack`` (the PUBACK
recorded, before the queue deletes the message).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

from edge.agent import Agent, AgentConfig
from edge.buffer import SqliteBuffer
from edge.clock import SystemClock
from edge.wire import Sample

ASSETS = ("k1", "k2")
DIE_POINTS = ("publish", "puback", "ack")


def _die(*_args: Any, **_kwargs: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_at(point: str) -> None:
    """Patch the send path so the first pass through *point* kills the process."""
    if point == "publish":
        publish = Agent._publish

        def publish_then_die(self: Agent, *args: Any) -> None:
            publish(self, *args)
            _die()

        Agent._publish = publish_then_die  # type: ignore[method-assign]
    elif point == "puback":
        Agent._on_puback = _die  # type: ignore[method-assign]
    else:
        SqliteBuffer.ack = _die  # type: ignore[method-assign,assignment]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--accepted", required=True)
    parser.add_argument("--start", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--die-at", choices=DIE_POINTS)
    args = parser.parse_args()
    agent = Agent(
        AgentConfig(
            site="chaos",
            sender="gw-kill",
            broker_url=args.broker,
            queue_path=args.queue,
            assets=ASSETS,
            protocol="3.1.1",
            shadow=False,
            max_batch_delay_s=0.05,
            backoff_min_s=0.05,
            backoff_max_s=0.3,
        ),
        SystemClock(),
    )
    if args.die_at:
        die_at(args.die_at)
    else:
        agent.start()
    fd = os.open(args.accepted, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    end = args.start + args.count
    for first in range(args.start, end, 5):
        batch = range(first, min(first + 5, end))
        for asset in ASSETS:
            agent.submit(asset, [Sample(1_700_000_000_000 + i, {"i": float(i)}) for i in batch])
        os.write(fd, f"{batch[-1]}\n".encode())
        time.sleep(0.002)
    os.write(fd, b"done\n")
    if args.die_at:
        agent.start()  # every reading is queued: the first send reaches the kill point
        time.sleep(30)
        return 3
    agent.stop(flush=True, timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
