"""The agent as a separate process, for the SIGKILL test.

Submits readings ``start..start+count`` one small batch at a time and, after each
``submit`` returns (the batch is committed), appends the last accepted index to a file,
so the test knows a lower bound of what the agent accepted when it was killed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.wire import Sample

ASSETS = ("k1", "k2")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--accepted", required=True)
    parser.add_argument("--start", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
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
    agent.stop(flush=True, timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
