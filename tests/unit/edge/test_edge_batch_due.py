"""The sender sleeps until a partial batch falls due, not a fixed tick past it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from edge.agent import IDLE_WAIT_S, Agent, AgentConfig
from edge.clock import ManualClock
from edge.wire import MAX_PAYLOAD_BYTES, Sample, encode

T = 1_700_000_000_000


def make(tmp_path: Path, clock: ManualClock) -> Agent:
    return Agent(
        AgentConfig(
            site="s1",
            sender="gw",
            broker_url="mqtt://127.0.0.1:1",  # nothing listens: the sender is not started
            queue_path=str(tmp_path / "q.db"),
            assets=("pump-1", "pump-2"),
            shadow=False,
            max_batch_delay_s=0.2,
            samples_per_message=10,
        ),
        clock,
    )


def test_the_sender_is_told_when_the_oldest_partial_batch_falls_due(tmp_path: Path) -> None:
    clock = ManualClock()
    agent = make(tmp_path, clock)
    # GIVEN nothing queued: it sleeps its idle wait (a submit wakes it sooner)
    assert agent._next_message() == (None, IDLE_WAIT_S)
    # WHEN one reading waits, then another asset's, 30 ms apart
    agent.submit("pump-1", [Sample(T, {"flow": 1.0})])
    clock.advance(0.03)
    agent.submit("pump-2", [Sample(T, {"flow": 1.0})])
    clock.advance(0.16)
    # THEN the first falls due in 10 ms (within the idle wait), and then it is sent alone
    message, due_in = agent._next_message()
    assert message is None and due_in == pytest.approx(0.01)
    clock.advance(0.01)
    message, due_in = agent._next_message()
    assert message is not None and message.asset == "pump-1" and due_in == 0.0
    message, due_in = agent._next_message()
    assert message is None and due_in == pytest.approx(0.03)


def test_a_full_batch_goes_at_once(tmp_path: Path) -> None:
    agent = make(tmp_path, ManualClock())
    agent.submit("pump-1", [Sample(T + i, {"flow": 1.0}) for i in range(10)])
    message, due_in = agent._next_message()
    assert message is not None and len(message.samples) == 10 and due_in == 0.0


@pytest.mark.parametrize(
    ("send_when_idle", "idle", "goes_at_once"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_a_lone_reading_goes_at_once_only_on_an_idle_link_when_asked(
    tmp_path: Path, send_when_idle: bool, idle: bool, goes_at_once: bool
) -> None:
    from dataclasses import replace

    clock = ManualClock()
    agent = make(tmp_path, clock)
    agent.config = replace(agent.config, send_when_idle=send_when_idle)
    # GIVEN one reading, far from a full batch and well inside the 0.2 s delay
    agent.submit("pump-1", [Sample(T, {"flow": 1.0})])
    clock.advance(0.01)
    message, due_in = agent._next_message(idle)
    # THEN it leaves now only if nothing awaits a PUBACK and the agent was told to
    if goes_at_once:
        assert message is not None and len(message.samples) == 1 and due_in == 0.0
    else:
        assert message is None and due_in == pytest.approx(min(IDLE_WAIT_S, 0.19))


def test_a_message_too_large_from_an_older_queue_is_formed_again_in_parts_not_stuck(
    tmp_path: Path,
) -> None:
    """GIVEN a queue written by an agent that stored a reading larger than a message can
    hold (before readings were split at queueing) WHEN the sender forms and publishes it
    THEN nothing is published and nothing raises: its readings are formed again in parts
    that each fit IoT Core's 128 KB (the old seq never went out, so no id changes content),
    instead of a sender error on every start and a reading stuck in the queue for good."""
    agent = make(tmp_path, ManualClock())
    values = {f"{i:05d}".ljust(190, "x"): float(i) for i in range(900)}
    body = json.dumps(values, separators=(",", ":"))
    db = sqlite3.connect(tmp_path / "q.db")
    db.execute(
        "INSERT INTO readings (asset, ts_ms, body, size, enq) VALUES ('pump-1', ?, ?, ?, 0)",
        (T, body, len(body)),
    )
    db.commit()
    db.close()
    agent.buffer._recount()
    agent.submit("pump-1", [Sample(T + 1, {"flow": 1.0})])

    published: list[bytes] = []

    class Connection:
        def publish(self, topic: str, payload: bytes, qos: object) -> object:
            published.append(payload)
            raise AssertionError("an oversize payload must not reach the broker")

    message, _ = agent._next_message()
    assert message is not None and len(message.samples) == 1  # the old reading, alone
    agent._publish(Connection(), agent._generation, message)  # type: ignore[arg-type]
    assert published == []
    assert agent.buffer.formed() == []  # the oversize seq is gone, its readings unformed
    merged: dict[str, object] = {}
    while (again := agent._next_message()[0]) is not None:
        assert again.seq != message.seq
        assert len(encode(again)) <= MAX_PAYLOAD_BYTES
        for sample in again.samples:
            if sample.ts_ms == T:
                merged.update(sample.values)
    assert merged == values
    assert agent.buffer.stats().depth >= 3  # the parts and the small reading, still queued
