"""A gateway whose shadows need more subscriptions than one connection may hold, against
amqtt, which refuses the 51st as IoT Core does: the agent's error says why it cannot
connect and what to change, not only which subscription failed."""

from __future__ import annotations

import time
from pathlib import Path

from cloud.runtime.broker import EmbeddedBroker
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.shadow import SUBSCRIPTIONS_PER_THING
from edge.wire import MAX_SUBSCRIPTIONS


def test_a_gateway_past_the_subscription_quota_says_why_it_cannot_connect(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    assets = tuple(f"pump-{n:02d}" for n in range(MAX_SUBSCRIPTIONS // SUBSCRIPTIONS_PER_THING + 1))
    agent = Agent(
        AgentConfig(
            site="s1",
            sender="gw-big",
            broker_url=broker.url,
            queue_path=str(tmp_path / "queue.db"),
            assets=assets,
            protocol="3.1.1",
            backoff_min_s=0.05,
            backoff_max_s=0.5,
        ),
        SystemClock(),
    )
    agent.start()
    try:
        deadline = time.monotonic() + 20
        while not agent.status()["last_error"] and time.monotonic() < deadline:
            time.sleep(0.05)
        status = agent.status()
    finally:
        agent.stop(flush=False)
    error = status["last_error"] or ""
    assert status["connects"] == 0
    assert f"{len(assets) * SUBSCRIPTIONS_PER_THING} subscriptions" in error, error
    assert f"allows {MAX_SUBSCRIPTIONS} per connection" in error, error
    assert "shadow = false" in error, error
