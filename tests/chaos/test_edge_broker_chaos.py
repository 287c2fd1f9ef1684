"""Chaos: the real broker is SIGKILLed and restarted 10 times during 20,000 readings."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from edge_helpers import Receiver, ShadowResponder
from tcp_gate import TcpGate

from cloud.runtime.broker import EmbeddedBroker
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.wire import Sample

ASSETS = ("a1", "a2", "a3", "a4")
TOTAL = 20_000
KILLS = 10


@pytest.mark.slow
@pytest.mark.timeout(120, method="thread")
def test_every_reading_arrives_through_ten_broker_kills(tmp_path: Path) -> None:
    broker = EmbeddedBroker("amqtt").start()
    gate = TcpGate(broker.host, broker.port)
    receiver = Receiver(broker.host, broker.port, client_id="rx-chaos")
    responder = ShadowResponder(broker.host, broker.port)
    agent = Agent(
        AgentConfig(
            site="chaos",
            sender="gw-chaos",
            broker_url=gate.url,
            queue_path=str(tmp_path / "queue.db"),
            assets=ASSETS,
            protocol="3.1.1",
            max_batch_delay_s=0.1,
            backoff_min_s=0.05,
            backoff_max_s=0.4,
        ),
        SystemClock(),
    )
    agent.start()
    submitted = threading.Event()

    def produce() -> None:
        for start in range(0, TOTAL, 10):
            for asset in ASSETS:
                agent.submit(
                    asset,
                    [
                        Sample(1_700_000_000_000 + i, {"v": float(i)})
                        for i in range(start, start + 10)
                        if i % 4 == ASSETS.index(asset)
                    ],
                )
            time.sleep(0.004)
        submitted.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        for kill in range(KILLS):
            # each cycle kills a live session that has traffic in flight
            deadline = time.monotonic() + 15
            while agent.status()["connects"] <= kill and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)
            gate.hold()
            # the broker finishes delivering what it acknowledged
            receiver.settle(at_least=agent.status()["sent"])
            subscribed = receiver.subscriptions
            broker.kill()
            gate.cut_and_close()
            time.sleep(0.2)
            broker.start()
            assert receiver.wait_subscribed(10, after=subscribed)
            gate.open()
        assert submitted.wait(60)
        assert receiver.wait_for(TOTAL, 60), f"{receiver.count()} of {TOTAL} arrived"
        # resubscribed after every session loss: a command still reaches the agent
        responder.set_desired("a3", {"mode": "safe"})
        assert agent.shadow is not None and agent.shadow.wait_applied("a3", "mode", "safe", 15)
        status = agent.status()
    finally:
        agent.stop(timeout=5)
        receiver.close()
        responder.close()
        gate.close()
        broker.close()
    expected = {(ASSETS[i % 4], 1_700_000_000_000 + i) for i in range(TOTAL)}
    assert set(receiver.readings) == expected
    assert receiver.changed_redeliveries == 0  # a re-sent msg_id always carries the same readings
    assert status["dropped"] == 0 and status["connects"] >= KILLS + 1
    print(
        f"\nchaos: {TOTAL} readings, {receiver.messages} messages, "
        f"{receiver.duplicate_messages} duplicate messages, {status['messages_resent']} re-sent, "
        f"{status['connects']} connects"
    )
