"""A subscriber that stops reading must not take the amqtt broker's memory.

The stalled subscriber is a raw socket with a small receive buffer that CONNECTs,
SUBSCRIBEs and then never reads again, as a hung device or a hostile client would. A
well-behaved publisher then sends 60 MB in 5 KB messages to its topic. The broker owes the
stalled client far more than it can ever deliver; what it holds for that one connection
must stay bounded (docs/protocol.md: 8 MiB of payload and 2,000 messages queued, plus
IoT Core's 100 unacknowledged QoS 1), so its RSS may grow by at most 48 MB: the bound and
the per-message bookkeeping, with room for the allocator. Unbounded, it grows by the
whole 60 MB and more. The publisher's PUBACKs must keep coming and a subscriber that
reads must get every message.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from mqtt_frames import connect_packet, remaining_length, split_packets
from raw_mqtt import RawClient

from cloud.runtime.broker import EmbeddedBroker

TOPIC = "dt/plantwatch/s1/stalled/telemetry"
MESSAGES = 12_000
PAYLOAD_BYTES = 5_000  # 12,000 x 5 KB = 60 MB
RSS_GROWTH_BOUND_MB = 48
pytestmark = pytest.mark.slow


@pytest.fixture
def logged() -> list[str]:
    return []


@pytest.fixture
def broker(logged: list[str]) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("amqtt", on_log=logged.append) as running:
        yield running


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


class PeakRss:
    """Samples a process's RSS every 50 ms, so a peak between samples of the test shows."""

    def __init__(self, pid: int) -> None:
        self.pid, self.start, self.peak = pid, rss_mb(pid), 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pid))

    def growth(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, rss_mb(self.pid)) - self.start


def stalled_subscriber(broker: EmbeddedBroker, qos: int) -> socket.socket:
    """CONNECT and SUBSCRIBE over a raw socket; the caller then never reads from it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect((broker.host, broker.port))
    client_id = f"stalled-q{qos}".encode()
    body = b"\x00\x04MQTT\x04\x02\x01\x2c" + len(client_id).to_bytes(2, "big") + client_id
    sock.sendall(b"\x10" + remaining_length(len(body)) + body)
    assert sock.recv(4) == b"\x20\x02\x00\x00", "CONNACK accepted"
    topic = TOPIC.encode()
    body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + bytes([qos])
    sock.sendall(b"\x82" + remaining_length(len(body)) + body)
    assert sock.recv(5) == bytes([0x90, 3, 0, 1, qos]), "SUBACK granted"
    return sock


class Publisher:
    """A well-behaved QoS 1 publisher: paho's in-flight window, every PUBACK counted."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.acked = 0
        self._cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="steady-publisher")
        self.client.max_inflight_messages_set(20)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port, keepalive=60)
        self.client.loop_start()

    def _on_publish(self, *_args: Any) -> None:
        with self._cond:
            self.acked += 1
            self._cond.notify_all()

    def acked_within(self, count: int, seconds: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.acked >= count, seconds)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize("qos", [0, 1])
def test_a_subscriber_that_never_reads_holds_a_bounded_share_of_the_broker(
    broker: EmbeddedBroker, logged: list[str], qos: int
) -> None:
    reader = RawClient(broker.host, broker.port, client_id="steady-reader", timeout=120)
    assert reader.subscribe([TOPIC], qos=1) == [True]
    stalled = stalled_subscriber(broker, qos)
    publisher = Publisher(broker)
    assert broker.pid is not None
    rss = PeakRss(broker.pid)
    try:
        started = time.monotonic()
        for n in range(MESSAGES):
            payload = n.to_bytes(4, "big") + bytes(PAYLOAD_BYTES - 4)
            publisher.client.publish(TOPIC, payload, qos=1)
            if n % 1000 == 999:
                assert publisher.acked_within(n + 1 - 100, 30), (
                    f"publisher blocked: {publisher.acked} of {n + 1} PUBACKed "
                    f"after {time.monotonic() - started:.0f} s"
                )
        assert publisher.acked_within(MESSAGES, 30), f"{publisher.acked} of {MESSAGES} PUBACKed"
        reader.wait(lambda: len(reader.messages) >= MESSAGES, f"{MESSAGES} messages", 120)
        growth = rss.growth()
    finally:
        publisher.close()
        reader.close()
        stalled.close()
    numbers = sorted(int.from_bytes(payload[:4], "big") for _topic, payload in reader.messages)
    assert numbers == list(range(MESSAGES)), "the reading subscriber got every message once"
    assert growth < RSS_GROWTH_BOUND_MB, (
        f"broker RSS grew {growth:.0f} MB for a client that never reads (bound "
        f"{RSS_GROWTH_BOUND_MB} MB)"
    )
    # what was dropped is said, naming the client, once a minute at most
    drops = [line for line in logged if "does not read what it is sent" in line]
    assert len(drops) == 1 and f"stalled-q{qos}" in drops[0], logged


SERVICE = "plantwatch-streaming"
BURST = 10_000  # 20 MB: past the bound (2,000 messages, 8 MiB) and the socket buffers


def qos0_payloads(sock: socket.socket, seconds: float) -> Iterator[bytes]:
    """The payloads of the QoS 0 PUBLISH packets read off *sock*, as they arrive, for at
    most *seconds* or until the connection closes."""
    sock.settimeout(0.5)
    data, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            return
        packets, data = split_packets(data + chunk)
        for first, body in packets:
            if first >> 4 == 3:
                yield body[2 + int.from_bytes(body[:2], "big") :]  # QoS 0: no packet id


def read_publishes(sock: socket.socket, count: int, seconds: float) -> int:
    """Read QoS 0 PUBLISH packets off *sock* until *count* arrived or *seconds* passed."""
    seen = 0
    for _payload in qos0_payloads(sock, seconds):
        seen += 1
        if seen >= count:
            break
    return seen


def test_the_stacks_own_service_clients_are_not_held_to_the_bound() -> None:
    """GIVEN the broker started with the stack's service clients named (``up`` names the
    rules runner, the streaming scorer, the device-status listener and the shadow service:
    they stand in for IoT Core's own services, which no connection quota limits)
    WHEN the streaming scorer falls more than the bound's 2,000 messages behind
    THEN it still gets every message once it reads again; a device would have lost them."""
    with EmbeddedBroker("amqtt", service_clients=(SERVICE,)) as running:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(5)
        sock.connect((running.host, running.port))
        sock.sendall(connect_packet(SERVICE, SERVICE, running.service_secret or ""))
        assert sock.recv(4) == b"\x20\x02\x00\x00", "CONNACK accepted"
        topic = TOPIC.encode()
        body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x00"
        sock.sendall(b"\x82" + remaining_length(len(body)) + body)
        assert sock.recv(5) == bytes([0x90, 3, 0, 1, 0]), "SUBACK granted"
        publisher = Publisher(running)
        try:
            for n in range(BURST):
                publisher.client.publish(TOPIC, n.to_bytes(4, "big") + bytes(2_000), qos=1)
            assert publisher.acked_within(BURST, 60), f"{publisher.acked} of {BURST} PUBACKed"
            assert read_publishes(sock, BURST, 60) == BURST
        finally:
            publisher.close()
            sock.close()


NEWEST = 6_000  # 12 MB in 2 KB messages: past the bound's 2,000 messages and 8 MiB


def read_numbers(sock: socket.socket, last: int, seconds: float) -> list[int]:
    """The message numbers of the QoS 0 PUBLISHes read off *sock*, until number *last*
    arrived or *seconds* passed."""
    numbers = []
    for payload in qos0_payloads(sock, seconds):
        numbers.append(int.from_bytes(payload[:4], "big"))
        if numbers[-1] == last:
            break
    return numbers


def test_a_slow_qos0_reader_loses_the_oldest_messages_not_the_newest(
    broker: EmbeddedBroker, logged: list[str]
) -> None:
    """GIVEN a QoS 0 subscriber that stops reading while a device publishes past the bound
    on what the broker holds for it
    WHEN it reads again
    THEN it gets the newest readings, in order, up to the last one published: a monitoring
    client wants the current state, and QoS 0 promises nothing about the old ones. The gap
    is counted and logged with its client id."""
    stalled = stalled_subscriber(broker, 0)
    publisher = Publisher(broker)
    try:
        for n in range(NEWEST):
            publisher.client.publish(TOPIC, n.to_bytes(4, "big") + bytes(2_000), qos=1)
        assert publisher.acked_within(NEWEST, 60), f"{publisher.acked} of {NEWEST} PUBACKed"
        numbers = read_numbers(stalled, NEWEST - 1, 60)
    finally:
        publisher.close()
        stalled.close()
    assert numbers, "the reader got messages"
    assert numbers == sorted(set(numbers)), "in order, each once"
    assert numbers[-1] == NEWEST - 1, f"the newest reading arrived (last seen {numbers[-1]})"
    assert len(numbers) < NEWEST, "some were dropped: the bound held"
    drops = [line for line in logged if "does not read what it is sent" in line]
    assert drops and "stalled-q0" in drops[0] and "oldest" in drops[0], logged
