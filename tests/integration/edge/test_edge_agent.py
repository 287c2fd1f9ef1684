"""The agent against a real amqtt broker: gateway publishing, outages, shadow commands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_helpers import Receiver, ShadowResponder
from tcp_gate import TcpGate

from cloud.runtime.broker import EmbeddedBroker
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.errors import StorageError
from edge.wire import Sample

ASSETS = ("pump-1", "pump-2", "pump-3")


def config(broker: EmbeddedBroker, tmp_path: Path, **extra: object) -> AgentConfig:
    options: dict[str, object] = {
        "max_batch_delay_s": 0.2,
        "backoff_min_s": 0.05,
        "backoff_max_s": 0.5,
        "protocol": "3.1.1",  # the auto probe is covered once, below
        **extra,
    }
    return AgentConfig(
        site="plant1",
        sender="gw-1",
        broker_url=broker.url,
        queue_path=str(tmp_path / "queue.db"),
        assets=ASSETS,
        **options,  # type: ignore[arg-type]
    )


def reading(i: int) -> Sample:
    return Sample(1_700_000_000_000 + i, {"flow": float(i), "temp": 20.0 + i % 7})


@pytest.fixture()
def responder(broker: EmbeddedBroker) -> Iterator[ShadowResponder]:
    peer = ShadowResponder(broker.host, broker.port)
    yield peer
    peer.close()


@pytest.fixture()
def receiver(broker: EmbeddedBroker) -> Iterator[Receiver]:
    peer = Receiver(broker.host, broker.port, client_id=f"rx-{time.time_ns()}")
    yield peer
    peer.close()


def test_gateway_publishes_every_reading_of_every_asset(
    broker: EmbeddedBroker, tmp_path: Path, receiver: Receiver
) -> None:
    agent = Agent(config(broker, tmp_path, shadow=False, protocol="auto"), SystemClock())
    agent.start()
    for i in range(600):
        agent.submit(ASSETS[i % 3], [reading(i)])
    assert receiver.wait_for(600, 20)
    agent.stop()
    assert {asset for asset, _ts in receiver.readings} == set(ASSETS)
    assert receiver.duplicate_messages == 0
    status = agent.status()
    assert status["protocol"] == "3.1.1"  # amqtt: MQTT 5 probed, fell back
    assert status["sent"] == 600 and status["queue_depth"] == 0 and status["dropped"] == 0


def test_readings_submitted_during_an_outage_arrive_after_it(tmp_path: Path) -> None:
    broker = EmbeddedBroker("amqtt").start()
    gate = TcpGate(broker.host, broker.port)
    receiver = Receiver(broker.host, broker.port, client_id="rx-outage")
    agent = Agent(
        AgentConfig(
            site="plant1",
            sender="gw-out",
            broker_url=gate.url,
            queue_path=str(tmp_path / "queue.db"),
            assets=ASSETS,
            protocol="3.1.1",
            shadow=False,
            max_batch_delay_s=0.2,
            backoff_min_s=0.05,
            backoff_max_s=0.5,
        ),
        SystemClock(),
    )
    try:
        agent.start()
        agent.submit("pump-1", [reading(i) for i in range(50)])
        assert receiver.wait_for(50, 20)
        broker.kill()
        gate.cut_and_close()
        agent.submit("pump-1", [reading(i) for i in range(50, 2050)])
        assert _wait(lambda: agent.status()["connected"] is False, 5)
        assert agent.status()["queue_depth"] == 2000
        broker.start()
        assert receiver.wait_subscribed(10)  # a fresh broker has no sessions: subscribe first
        gate.open()
        assert receiver.wait_for(2050, 30), receiver.count()
        # the backlog left in few large messages, not 100 small ones, oldest first
        assert receiver.messages - receiver.duplicate_messages < 20
        assert receiver.out_of_order == 0
    finally:
        agent.stop(timeout=2)
        receiver.close()
        gate.close()
        broker.close()


def test_publishes_stay_under_the_rate_limit(
    broker: EmbeddedBroker, tmp_path: Path, receiver: Receiver
) -> None:
    """IoT Core drops publishes past 100/s per connection; the agent paces itself."""
    agent = Agent(
        config(
            broker,
            tmp_path,
            shadow=False,
            samples_per_message=1,
            max_message_bytes=250,  # a backlog would otherwise leave in 128 KB messages
            max_publishes_per_s=50.0,
        ),
        SystemClock(),
    )
    sent: list[float] = []
    publish = agent._publish

    def timed_publish(*args: Any) -> None:  # when the agent lets a message out
        sent.append(time.monotonic())
        publish(*args)

    agent._publish = timed_publish  # type: ignore[method-assign]
    agent.start()
    for i in range(100):  # about 100 ready messages, well over 50/s
        agent.submit("pump-1", [reading(i)])
        agent.submit("pump-2", [reading(i)])
    assert receiver.wait_for(200, 30)
    agent.stop()
    # Timed where the agent publishes: arrivals at a subscriber bunch when the broker is
    # slow, which says nothing about the agent's pace.
    busiest = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
    assert receiver.messages >= 80
    assert busiest <= 50 + 1  # paced: at most the rate in any one-second window, plus one
    assert receiver.out_of_order == 0


def test_stop_flushes_the_queue(broker: EmbeddedBroker, tmp_path: Path, receiver: Receiver) -> None:
    agent = Agent(config(broker, tmp_path, shadow=False, max_batch_delay_s=60.0), SystemClock())
    agent.start()
    agent.submit("pump-2", [reading(i) for i in range(5)])  # a partial message, not yet due
    agent.stop(flush=True, timeout=10)
    assert receiver.wait_for(5, 5)


def test_send_when_idle_sends_a_lone_reading_without_waiting_out_the_delay(
    broker: EmbeddedBroker, tmp_path: Path, receiver: Receiver
) -> None:
    """With a 60 s delay a lone reading would wait a minute; on an idle link it goes now,
    and readings that come while a message is in flight still reach the broker."""
    agent = Agent(
        config(broker, tmp_path, shadow=False, max_batch_delay_s=60.0, send_when_idle=True),
        SystemClock(),
    )
    agent.start()
    try:
        assert _wait(lambda: agent.status()["connected"], 15)
        agent.submit("pump-1", [reading(0)])
        assert receiver.wait_for(1, 10)
        for i in range(1, 40):
            agent.submit("pump-1", [reading(i)])
        assert receiver.wait_for(40, 10)
        assert agent.status()["queue_depth"] == 0
    finally:
        agent.stop()


def test_mode_command_is_applied_and_reported(
    broker: EmbeddedBroker, tmp_path: Path, responder: ShadowResponder
) -> None:
    agent = Agent(config(broker, tmp_path), SystemClock())
    agent.start()
    try:
        assert _wait(lambda: agent.status()["connected"], 15)
        responder.set_desired("pump-2", {"mode": "safe"})
        assert agent.shadow is not None and agent.shadow.wait_applied("pump-2", "mode", "safe", 10)
        assert agent.applied["pump-2"] == {"mode": "safe"}
        assert _wait(lambda: responder.reported("pump-2").get("mode") == "safe", 10)
        assert agent.applied["pump-1"] == {}
    finally:
        agent.stop()


def test_invalid_desired_value_is_reported_as_an_error_not_a_crash(
    broker: EmbeddedBroker, tmp_path: Path, responder: ShadowResponder
) -> None:
    agent = Agent(config(broker, tmp_path), SystemClock())
    seen: list[tuple[str, object]] = []

    def setpoints(asset: str, value: object) -> object:
        if not isinstance(value, dict) or "pressure" not in value:
            raise ValueError("setpoints: pressure is required")
        seen.append((asset, value))
        return value

    agent.register_command("setpoints", setpoints)
    agent.start()
    try:
        assert _wait(lambda: agent.status()["connected"], 15)
        responder.set_desired("pump-1", {"mode": "turbo", "setpoints": {"flow": 3}})
        assert _wait(lambda: "errors" in responder.reported("pump-1"), 10)
        errors = responder.reported("pump-1")["errors"]
        assert set(errors) == {"mode", "setpoints"}
        assert "normal, safe, stop" in errors["mode"]["message"]
        responder.set_desired("pump-1", {"mode": "stop", "setpoints": {"pressure": 2.5}})
        assert _wait(lambda: "errors" not in responder.reported("pump-1"), 10)
        assert responder.reported("pump-1")["mode"] == "stop"
        assert seen == [("pump-1", {"flow": 3, "pressure": 2.5})]  # desired objects merge
    finally:
        agent.stop()


def test_each_desired_version_is_applied_once(
    broker: EmbeddedBroker, tmp_path: Path, responder: ShadowResponder
) -> None:
    agent = Agent(config(broker, tmp_path), SystemClock())
    calls: list[object] = []
    agent.register_command("sampling_interval_s", lambda _a, v: calls.append(v) or v)
    agent.start()
    try:
        assert _wait(lambda: agent.status()["connected"], 15)
        responder.set_desired("pump-3", {"sampling_interval_s": 5})
        assert _wait(lambda: responder.reported("pump-3").get("sampling_interval_s") == 5, 10)
        # an unrelated desired change republishes the whole delta; 5 must not be re-applied
        responder.set_desired("pump-3", {"mode": "safe"})
        assert _wait(lambda: responder.reported("pump-3").get("mode") == "safe", 10)
        assert calls == [5]
    finally:
        agent.stop()


def test_version_conflict_triggers_a_get_and_the_missed_change_is_applied(
    broker: EmbeddedBroker, tmp_path: Path, responder: ShadowResponder
) -> None:
    agent = Agent(config(broker, tmp_path), SystemClock())
    agent.start()
    try:
        assert _wait(lambda: agent.status()["connected"], 15)
        responder.conflict_next = {"mode": "stop"}
        responder.set_desired("pump-1", {"mode": "safe"})
        assert _wait(lambda: responder.reported("pump-1").get("mode") == "stop", 10)
        assert responder.conflicts == 1
        assert agent.applied["pump-1"]["mode"] == "stop"
    finally:
        agent.stop()


def test_desired_state_set_while_the_agent_is_down_is_applied_on_restart(
    broker: EmbeddedBroker, tmp_path: Path, responder: ShadowResponder
) -> None:
    first = Agent(config(broker, tmp_path), SystemClock())
    first.start()
    assert _wait(lambda: first.status()["connected"], 15)
    first.stop()
    responder.set_desired("pump-3", {"mode": "safe", "sampling_interval_s": 2})
    second = Agent(config(broker, tmp_path), SystemClock())
    second.start()
    try:
        assert second.shadow is not None and second.shadow.wait_applied(
            "pump-3", "mode", "safe", 15
        )
        assert _wait(lambda: second.sampling_interval_s == 2, 10)  # applied after mode
        assert _wait(
            lambda: responder.reported("pump-3") == {"mode": "safe", "sampling_interval_s": 2}, 10
        )
    finally:
        second.stop()


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(predicate())  # type: ignore[operator]


def test_a_queue_failure_in_the_sender_backs_off_shows_and_recovers(
    broker: EmbeddedBroker, tmp_path: Path, receiver: Receiver
) -> None:
    # GIVEN an agent whose queue cannot form messages for a while (disk trouble)
    agent = Agent(config(broker, tmp_path, shadow=False), SystemClock())
    broken = {"on": True}
    form = agent.buffer.form

    def failing_form(*args: object, **kwargs: object) -> object:
        if broken["on"]:
            raise StorageError(f"queue {agent.buffer.path}: form failed (disk I/O error)")
        return form(*args, **kwargs)  # type: ignore[arg-type]

    agent.buffer.form = failing_form  # type: ignore[method-assign]
    agent.start()
    try:
        agent.submit("pump-1", [reading(i) for i in range(20)])

        # THEN the sender keeps trying, and the status says so instead of "all is well"
        assert _wait(lambda: agent.status()["sender_errors"] >= 2, 10)
        status = agent.status()
        assert status["sender_state"] == "backing_off"
        assert "disk I/O error" in str(status["last_error"])

        # WHEN the disk recovers, THEN every reading arrives and the sender is running again
        broken["on"] = False
        assert receiver.wait_for(20, 20)
        assert _wait(lambda: agent.status()["sender_state"] == "running", 5)
    finally:
        agent.stop()
