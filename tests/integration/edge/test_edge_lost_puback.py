"""A PUBACK lost on a link that stays up: the publish is given up after the operation
timeout the config sets (passed to awscrt) and sent again on the same connection, not
left waiting for as long as awscrt would wait by itself."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mini_broker import MiniBroker

from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.wire import Sample


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_lost_puback_is_sent_again_after_the_configured_operation_timeout(
    tmp_path: Path, protocol: str
) -> None:
    """GIVEN a broker that loses the PUBACK of one publish and keeps the link up (the
    agent's no-PUBACK watchdog set far off, so it does not reconnect)
    WHEN the operation timeout is 2 s
    THEN that message is sent again about 2 s later on the same connection, and acknowledged."""
    broker = MiniBroker(drop_first_telemetry_puback=True)
    agent = Agent(
        AgentConfig(
            site="s",
            sender="gw-lost",
            broker_url=broker.url,
            queue_path=str(tmp_path / "q.db"),
            assets=("d1",),
            protocol=protocol,
            shadow=False,
            max_batch_delay_s=0.05,
            ack_timeout_s=120.0,
            operation_timeout_s=2.0,
        ),
        SystemClock(),
    )
    agent.start()
    try:
        agent.submit("d1", [Sample(1_700_000_000_000, {"x": 1.0})])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and agent.status()["queue_depth"]:
            time.sleep(0.05)
        status = agent.status()
        assert status["queue_depth"] == 0, status
        (first, msg_id), (again, same) = broker.telemetry[:2]
        assert same == msg_id
        assert 1.5 <= again - first <= 6.0, again - first
        assert status["connects"] == 1 and broker.accepted == 1, status
    finally:
        agent.stop(flush=False, timeout=2)
        broker.close()


def test_the_operation_timeout_is_25_s_unless_told_and_reaches_the_transport(
    tmp_path: Path,
) -> None:
    """A lost PUBACK costs 25 s by default, not awscrt's own wait; 50 s at most."""
    config = AgentConfig(
        site="s",
        sender="gw",
        broker_url="mqtt://127.0.0.1:1",
        queue_path=str(tmp_path / "q.db"),
        assets=("d1",),
        shadow=False,
    )
    agent = Agent(config, SystemClock())
    try:
        assert agent.transport.operation_timeout_ms == 25_000
    finally:
        agent.buffer.close()
