"""A half-open link (no FIN, no RST: a NAT or cellular drop) is noticed within seconds."""

from __future__ import annotations

import time
from pathlib import Path

from edge_helpers import Receiver
from tcp_gate import TcpGate

from cloud.runtime.broker import EmbeddedBroker
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.wire import Sample


def make_agent(gate: TcpGate, tmp_path: Path) -> Agent:
    return Agent(
        AgentConfig(
            site="s",
            sender="gw-dead",
            broker_url=gate.url,
            queue_path=str(tmp_path / "q.db"),
            assets=("d1",),
            protocol="3.1.1",
            shadow=False,
            max_batch_delay_s=0.05,
            ack_timeout_s=1.0,
            keep_alive_s=2,
            ping_timeout_ms=1000,
            backoff_min_s=0.05,
            backoff_max_s=0.2,
        ),
        SystemClock(),
    )


def wait_connects(agent: Agent, n: int, timeout: float) -> float:
    t0 = time.monotonic()
    while agent.status()["connects"] < n:
        assert time.monotonic() - t0 < timeout, agent.status()
        time.sleep(0.02)
    return time.monotonic() - t0


def test_blackholed_link_is_replaced_while_publishing_and_when_idle(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    gate = TcpGate(broker.host, broker.port)
    receiver = Receiver(broker.host, broker.port, client_id="rx-dead")
    agent = make_agent(gate, tmp_path)
    agent.start()
    try:
        wait_connects(agent, 1, 15)
        # busy link: publishes wait for PUBACKs that never come -> ack watchdog
        gate.blackhole()
        time.sleep(0.1)  # the relay notices within 50 ms
        agent.submit("d1", [Sample(1_700_000_000_000 + i, {"x": 1.0}) for i in range(50)])
        busy = wait_connects(agent, 2, 10)
        assert receiver.wait_for(50, 10)
        # idle link: nothing to publish -> MQTT keep-alive ping times out
        gate.blackhole()
        idle = wait_connects(agent, 3, 15)
        agent.submit("d1", [Sample(1_700_000_001_000, {"x": 2.0})])
        assert receiver.wait_for(51, 10)
    finally:
        agent.stop(timeout=3)
        receiver.close()
        gate.close()
    assert busy < 2.5 and idle < 8
    print(f"\ndead link replaced after {busy:.1f} s busy, {idle:.1f} s idle")
