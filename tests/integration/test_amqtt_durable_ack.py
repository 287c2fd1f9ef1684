"""End-to-end acknowledgement on the embedded amqtt broker (``--durable-subscriber``).

With the flag, a device's QoS 1 PUBLISH on a topic the durable subscriber (the rules
runner) subscribes to is PUBACKed only after that subscriber has PUBACKed its copy, which
the runner does after its spool commit. The "runner" here is plain paho with manual acks,
driven on the test thread so the test decides when it acks and when it dies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import paho.mqtt.client as mqtt
import pytest
from ingest_helpers import LoopedSubscriber
from waiting import wait_until

from cloud.adapters.local.mqtt_url import BrokerAddress
from cloud.runtime.broker import EmbeddedBroker

RUNNER = "plantwatch-rules"
FILTER = "dt/plantwatch/+/+/telemetry"
TOPIC = "dt/plantwatch/s1/pump/telemetry"
OTHER_TOPIC = "dt/plantwatch/s1/pump/status"  # read by other services, not the runner
C = TypeVar("C")


@pytest.fixture
def durable_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("amqtt", durable_subscriber=RUNNER) as running:
        yield running


@pytest.fixture
def plain_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("amqtt") as running:
        yield running


class Runner(LoopedSubscriber):
    """The rules runner's MQTT side: its client id, subscribed to its filter unless told."""

    def __init__(self, broker: EmbeddedBroker | BrokerAddress, *, subscribe: bool = True) -> None:
        super().__init__(broker, RUNNER, subscribe=FILTER if subscribe else None, timeout=10.0)


class Device:
    """A paho device publishing QoS 1 with its own network thread."""

    def __init__(
        self, broker: EmbeddedBroker | BrokerAddress, client_id: str = "t-durable-dev"
    ) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.connect(broker.host, broker.port, keepalive=60)
        self.client.loop_start()
        assert wait_until(self.client.is_connected)

    def publish(self, payload: bytes, topic: str = TOPIC) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def opened() -> Iterator[Callable[[C], C]]:
    """``opened(client)`` closes *client* when the test ends, last opened first; a client
    the test kills or closes itself is not passed to it."""
    clients: list[Runner | Device] = []

    def keep(client: C) -> C:
        clients.append(client)
        return client

    yield keep
    for client in reversed(clients):
        client.close()


def _released(info: mqtt.MQTTMessageInfo, runner: Runner) -> bool:
    """The runner acks what it received; then the device gets its PUBACK."""
    runner.ack_all()
    return wait_until(info.is_published, timeout=5)


def test_without_the_flag_the_device_is_acked_before_the_subscriber(
    plain_broker: EmbeddedBroker, opened: Callable[[C], C]
) -> None:
    # GIVEN a broker started without --durable-subscriber (as the benches start it)
    runner = opened(Runner(plain_broker))
    device = opened(Device(plain_broker))
    # WHEN a device publishes and the runner receives it but does not ack
    info = device.publish(b"r1")
    assert runner.loop_until(lambda: len(runner.received) == 1)
    # THEN the device has its PUBACK anyway: today's behaviour
    assert wait_until(info.is_published, timeout=5)


def test_the_device_puback_waits_for_the_runner_puback(
    durable_broker: EmbeddedBroker, opened: Callable[[C], C]
) -> None:
    # GIVEN the runner subscribed and a device publishing QoS 1 on its topic
    runner = opened(Runner(durable_broker))
    device = opened(Device(durable_broker))
    infos = [device.publish(b"r%d" % i) for i in range(3)]
    # WHEN the runner has received the copies but not acked them
    assert runner.loop_until(lambda: len(runner.received) == 3)
    runner.loop_for(1.0)
    # THEN the device has no PUBACK yet
    assert not any(info.is_published() for info in infos)
    # AND once the runner acks, the device gets its PUBACKs
    runner.ack_all()
    assert wait_until(lambda: all(info.is_published() for info in infos), timeout=5)


def test_other_topics_and_qos0_are_acked_at_once(
    durable_broker: EmbeddedBroker, opened: Callable[[C], C]
) -> None:
    # GIVEN the runner subscribed, never acking
    runner = opened(Runner(durable_broker))
    device = opened(Device(durable_broker))
    # WHEN a device publishes QoS 1 on topics the runner does not read (one of them a
    # shadow topic), and QoS 0 on one it does
    other = device.publish(b"status", topic=OTHER_TOPIC)
    shadow = device.publish(b"{}", topic="$aws/things/pump-01/shadow/update")
    qos0 = device.client.publish(TOPIC, b"q0", qos=0)
    # THEN the QoS 1 ones are PUBACKed without the runner, the QoS 0 one goes through
    assert wait_until(lambda: other.is_published() and shadow.is_published(), timeout=5)
    assert runner.loop_until(lambda: len(runner.received) == 1)
    assert qos0.is_published()


def test_runner_offline_the_device_waits_until_it_is_back_and_acks(
    durable_broker: EmbeddedBroker, opened: Callable[[C], C]
) -> None:
    # GIVEN the runner subscribed once, then died
    Runner(durable_broker).kill()
    device = opened(Device(durable_broker))
    # WHEN a device publishes while it is away
    info = device.publish(b"while-away")
    time.sleep(1.0)
    # THEN no PUBACK (no timeout acks anyway)
    assert not info.is_published()
    # AND when the runner resumes its session, receives the kept copy and acks it, the
    # device is released
    second = opened(Runner(durable_broker, subscribe=False))
    assert second.loop_until(lambda: len(second.received) == 1)
    assert second.received[0].payload == b"while-away"
    assert not info.is_published()
    assert _released(info, second)


def test_the_ack_of_a_redelivered_copy_releases_the_device(
    durable_broker: EmbeddedBroker, opened: Callable[[C], C]
) -> None:
    # GIVEN the runner received a copy and died before acking it (before its commit)
    first = Runner(durable_broker)
    device = opened(Device(durable_broker))
    info = device.publish(b"in-flight")
    assert first.loop_until(lambda: len(first.received) == 1)
    first.kill()
    assert not info.is_published()
    # WHEN it resumes its session, gets the copy again (DUP) and acks it
    second = opened(Runner(durable_broker, subscribe=False))
    assert second.loop_until(lambda: len(second.received) == 1)
    assert second.received[0].dup
    # THEN the device, still connected with the same packet id, gets its PUBACK
    assert _released(info, second)


def test_a_publish_before_the_runner_ever_subscribed_waits_for_it(
    durable_broker: EmbeddedBroker, opened: Callable[[C], C]
) -> None:
    # GIVEN no runner has subscribed yet
    device = opened(Device(durable_broker))
    info = device.publish(b"early")
    time.sleep(1.0)
    assert not info.is_published()
    # WHEN the runner connects and subscribes
    runner = opened(Runner(durable_broker))
    # THEN it gets the early reading (routed once its filter is known), and its ack
    # releases the device
    assert runner.loop_until(lambda: len(runner.received) == 1)
    assert runner.received[0].payload == b"early"
    assert _released(info, runner)


def test_a_device_that_leaves_while_waiting_breaks_nothing(
    durable_broker: EmbeddedBroker, opened: Callable[[C], C]
) -> None:
    # GIVEN a device waiting for the runner's ack of its reading
    runner = opened(Runner(durable_broker))
    leaver = Device(durable_broker, client_id="t-durable-leaver")
    leaver.publish(b"left")
    assert runner.loop_until(lambda: len(runner.received) == 1)
    # WHEN the device disconnects before the runner acks, then the runner acks
    leaver.close()
    time.sleep(0.3)
    runner.ack_all()
    # THEN the broker goes on: another device's reading is received and acked
    device = opened(Device(durable_broker))
    info = device.publish(b"next")
    assert runner.loop_until(lambda: len(runner.received) == 2)
    assert _released(info, runner)
    assert durable_broker.running


def test_a_device_leaving_while_held_leaves_no_task_behind() -> None:
    """In-process, to look inside: the held publish's task ends with the connection."""
    import asyncio
    import threading

    from cloud.runtime import amqtt_server
    from cloud.runtime.broker import free_port

    port = free_port("127.0.0.1")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, loop).result(10)

    async def start() -> amqtt_server.Broker:
        amqtt_server._DURABLE = amqtt_server._DurableSubscriber(RUNNER, asyncio.Event())
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {"cloud.runtime.amqtt_server.OpenAuthPlugin": {}},
        }
        broker = amqtt_server.Broker(config)
        await broker.start()
        return broker

    broker = run(start())
    address = BrokerAddress("127.0.0.1", port)
    try:
        runner = Runner(address)
        leaver = Device(address, client_id="t-durable-leaver")
        leaver.publish(b"held")
        assert runner.loop_until(lambda: len(runner.received) == 1)
        handler = broker._sessions["t-durable-leaver"][1]
        held = set(handler._held_tasks())
        assert len(held) == 1  # the publish waits for the runner's PUBACK
        # WHEN the device disconnects before the runner acks
        leaver.close()
        assert wait_until(lambda: all(task.done() for task in held), timeout=5)
        # THEN its held task has ended and the handler holds nothing
        assert handler._held_tasks() == set()
        # AND the runner's later PUBACK is harmless
        runner.ack_all()
        runner.close()
    finally:
        run(broker.shutdown())
        amqtt_server._DURABLE = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
