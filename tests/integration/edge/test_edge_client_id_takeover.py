"""Two agents started with one sender (= client id = thing name).

A second connection with the same client id disconnects the first (iot-core-rules-and-limits
§2; MQTT-3.1.4-2), so the two take turns for good. Each must say why in plain words (the
client id and what to change), within a few takeovers and not in a line per takeover, and
show it in its status, instead of logging "socket is closed" forever.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from cloud.runtime.broker import EmbeddedBroker
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock

pytestmark = pytest.mark.mosquitto


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_two_agents_with_one_client_id_each_say_so_once_in_a_while(
    protocol: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.agent")
    with EmbeddedBroker("mosquitto") as broker:
        twins = [
            Agent(
                AgentConfig(
                    site="plant1",
                    sender="gw-twin",
                    broker_url=broker.url,
                    queue_path=str(tmp_path / f"q{i}.db"),
                    assets=("a-1",),
                    protocol=protocol,
                    shadow=False,
                    backoff_min_s=0.05,
                    backoff_max_s=1.0,
                ),
                SystemClock(),
            )
            for i in range(2)
        ]
        for agent in twins:
            agent.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                said = [r for r in caplog.records if getattr(r, "event", "") == "client_id_taken"]
                if len(said) >= 2:
                    break
                time.sleep(0.1)
            time.sleep(3)
            statuses = [agent.status() for agent in twins]
        finally:
            for agent in twins:
                agent.stop(flush=False, timeout=2)
    said = [r for r in caplog.records if getattr(r, "event", "") == "client_id_taken"]
    assert len(said) >= 2, [r.getMessage() for r in caplog.records][-10:]
    assert len(said) <= 2, "one line a minute per agent at most"
    for record in said:
        text = record.getMessage()
        assert "'gw-twin'" in text and "client id" in text and "sender" in text, text
    for status in statuses:
        assert status["link_drops_in_a_row"] >= 3, status
