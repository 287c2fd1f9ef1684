"""MQTT 5 path (IoT Core's protocol) against mosquitto, when its binary is on PATH."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from edge_helpers import Receiver, ShadowResponder

from cloud.runtime.broker import EmbeddedBroker
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.wire import Sample

pytestmark = pytest.mark.mosquitto


def test_auto_negotiates_mqtt5_publishes_and_applies_commands(tmp_path: Path) -> None:
    with EmbeddedBroker("mosquitto") as broker:
        receiver = Receiver(broker.host, broker.port, client_id="rx-5")
        responder = ShadowResponder(broker.host, broker.port)
        responder.set_desired("m1", {"mode": "safe"})
        agent = Agent(
            AgentConfig(
                site="s5",
                sender="gw-5",
                broker_url=broker.url,
                queue_path=str(tmp_path / "q.db"),
                assets=("m1",),
                max_batch_delay_s=0.1,
            ),
            SystemClock(),
        )
        agent.start()
        try:
            agent.submit("m1", [Sample(1_700_000_000_000 + i, {"x": float(i)}) for i in range(100)])
            assert receiver.wait_for(100, 15)
            assert agent.shadow is not None and agent.shadow.wait_applied("m1", "mode", "safe", 10)
            deadline = time.monotonic() + 10
            while responder.reported("m1").get("mode") != "safe" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert responder.reported("m1") == {"mode": "safe"}
            assert agent.status()["protocol"] == "5"
        finally:
            agent.stop()
            receiver.close()
            responder.close()
