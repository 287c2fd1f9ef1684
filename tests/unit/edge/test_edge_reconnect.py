"""Reconnect backoff: a link that drops soon after it came up backs off like a failed
connect, so two devices with one client id do not take the id from each other in a loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge import agent as agent_module
from edge.agent import STABLE_LINK_S, Agent, AgentConfig
from edge.clock import ManualClock


class Script:
    """Stands in for the link: each call is a link that was up for the next uptime."""

    def __init__(self, agent: Agent, uptimes: list[float]) -> None:
        self.agent, self.uptimes, self.waits = agent, list(uptimes), []

    def link_once(self) -> float:
        up = self.uptimes.pop(0)
        if not self.uptimes:
            self.agent._running = False
        return up

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return False


def looped(tmp_path: Path, uptimes: list[float], monkeypatch: pytest.MonkeyPatch) -> list[float]:
    agent = Agent(
        AgentConfig(
            site="s1",
            sender="gw",
            broker_url="mqtt://127.0.0.1:1",
            queue_path=str(tmp_path / "q.db"),
            assets=("pump-1",),
            shadow=False,
            backoff_min_s=1.0,
            backoff_max_s=64.0,
        ),
        ManualClock(),
    )
    script = Script(agent, uptimes)
    monkeypatch.setattr(agent, "_link_once", script.link_once)
    monkeypatch.setattr(agent._stopping, "wait", script.wait)
    monkeypatch.setattr(agent_module.random, "uniform", lambda low, high: high)
    agent._running = True
    agent._link_loop()
    return script.waits


def test_links_that_drop_at_once_back_off_more_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a link taken away half a second after each connect (another device, same id)
    waits = looped(tmp_path, [0.5] * 7, monkeypatch)
    # THEN each reconnect waits twice as long as the last, up to backoff_max_s (the last
    # drop is the agent stopping: no wait)
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]


def test_a_link_that_stayed_up_reconnects_at_once_and_starts_the_backoff_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits = looped(tmp_path, [0.5, 0.5, STABLE_LINK_S + 1, 0.5, 0.5, 0.5], monkeypatch)
    # the stable link's drop waits nothing; the short ones after it start from the bottom
    assert waits == [2.0, 4.0, 2.0, 4.0]


def test_connect_attempts_are_a_second_apart_even_with_a_shorter_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a broker that refuses every CONNECT (wrong credentials, a policy) and a backoff
    configured below a second
    WHEN the agent keeps trying
    THEN no two CONNECTs of its client id start within a second: IoT Core takes one CONNECT
    per second per client id (iot-core-rules-and-limits §3) and throttles the rest, so a
    faster retry only fails again."""
    agent = Agent(
        AgentConfig(
            site="s1",
            sender="gw",
            broker_url="mqtt://127.0.0.1:1",
            queue_path=str(tmp_path / "q.db"),
            assets=("pump-1",),
            shadow=False,
            backoff_min_s=0.05,
            backoff_max_s=0.1,
        ),
        ManualClock(),
    )
    attempts = iter(range(6))
    waits: list[float] = []

    def refused() -> float:
        if next(attempts) == 5:
            agent._running = False
        raise agent_module.LinkDown("connect to 127.0.0.1:1: refused by the broker")

    def wait(timeout: float | None = None) -> bool:
        waits.append(timeout or 0.0)
        return False

    monkeypatch.setattr(agent, "_link_once", refused)
    monkeypatch.setattr(agent._stopping, "wait", wait)
    agent._running = True
    agent._link_loop()
    assert len(waits) >= 5
    assert all(0.9 <= w <= agent_module.CONNECT_INTERVAL_S for w in waits[:5]), waits
